"""marshmallow dumps without the per-field machinery, for the schemas of hot responses.

`Schema.dump` asks every field to `serialize(attr, obj, accessor)`: a generic attribute
lookup (dotted paths, mappings or objects, a default when missing), then the field's own
`_serialize`. For a flat schema that is most of the cost of dumping a customer, and a list
page dumps ten. `FastDump` keeps the second step, so every value is still converted by the
field itself (a `DateTime` formats, a `Method` calls its method, a `Nested` dumps its
schema), and replaces the first with one `getattr` or key per field, worked out once per
schema class. Whatever it cannot do exactly as marshmallow would (hooks, `only`/`exclude`,
dotted attributes, a value missing on the object) goes to marshmallow's own `dump`;
tests/unit/saas/test_fastdump.py compares both on the schemas that use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma

_MISSING = ma.missing
# one field of a plan: its name, its key in the output, the attribute it reads (None for
# fields that read none: Method, Function, Constant) and the field
_Step = tuple[str, str, str | None, Any]
# per schema class and set of load-only fields (which dumps leave out); None: no short path
_PLANS: dict[tuple[type, frozenset[str]], list[_Step] | None] = {}


class FastDump(ma.Schema):
    """Base class of a schema whose dumps take the short path when they can."""

    def _fast_plan(self) -> list[_Step] | None:
        cache_key = (type(self), frozenset(self.load_only))
        if cache_key in _PLANS:
            return _PLANS[cache_key]
        plan: list[_Step] | None = []
        if any(self._hooks.values()):
            plan = None
        else:
            for name, field in self.dump_fields.items():
                attribute = field.attribute or name
                if "." in attribute:
                    plan = None
                    break
                key = field.data_key if field.data_key is not None else name
                check = attribute if field._CHECK_ATTRIBUTE else None
                assert plan is not None
                plan.append((name, key, check, field))
        _PLANS[cache_key] = plan
        return plan

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        many = self.many if many is None else bool(many)
        plan = None if (self.only or self.exclude) else self._fast_plan()
        if plan is None:
            return super().dump(obj, many=many)
        if many:
            return [self._dump_one(plan, item) for item in obj]
        return self._dump_one(plan, obj)

    def _dump_one(self, plan: list[_Step], obj: Any) -> Any:
        mapping = isinstance(obj, Mapping)
        out: dict[str, Any] = {}
        for name, key, attribute, field in plan:
            value = None
            if attribute is not None:
                value = (
                    obj.get(attribute, _MISSING) if mapping else getattr(obj, attribute, _MISSING)
                )
                if value is _MISSING:
                    # a default, or a key left out: marshmallow's rules, for the whole object
                    return super().dump(obj, many=False)
            result = field._serialize(value, name, obj)
            if result is not _MISSING:
                out[key] = result
        return out
