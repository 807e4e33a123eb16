"""Staff accounts and sign-in: password (scrypt), then a TOTP code, then a session.

Rules:

* Sign-in names the workspace (the tenant's slug), so accounts are found inside one tenant
  and row-level security never has to be lifted. An unknown workspace or e-mail address and
  a wrong password give the same answer, and the password is hashed either way, so neither
  the message nor the timing tells which it was.
* Throttling: every failed password or code counts against the account; from the fifth
  failure in a row the account is locked for 15 minutes, doubling with each further failure
  up to a day. A success resets the count. (Per address, the platform's failed-
  authentication budget applies as well: `saas.http.ratelimit.count_auth_failure`.)
* A TOTP code is accepted once (`totp_last_step`), within one 30-second step of drift.
* Roles: `owner` (everything, including staff and API keys), `admin` (changes data),
  `read_only` (sees everything, changes nothing).
* A session lives 8 hours; the cookie holds `<tenant>.<session id>.<secret>`, the row the
  secret's SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.dashboard import passwords, totp
from saas.dashboard.models import ROLES, StaffAccount, StaffSession
from saas.kernel import tenancy
from saas.kernel.errors import (
    ConflictError,
    ForbiddenError,
    UnauthenticatedError,
    ValidationFailedError,
)
from saas.kernel.ids import new_id
from saas.kernel.secretbox import SecretBox
from saas.tenants.models import Tenant

SESSION_TTL = timedelta(hours=8)
FREE_FAILURES = 4
FIRST_LOCK = timedelta(minutes=15)
LONGEST_LOCK = timedelta(days=1)
WRITE_ROLES = frozenset({"owner", "admin"})


class LoginFailedError(UnauthenticatedError):
    code = "login_failed"


class AccountLockedError(UnauthenticatedError):
    code = "account_locked"


class StaffSessionInvalidError(UnauthenticatedError):
    code = "staff_session_invalid"


class ReadOnlyRoleError(ForbiddenError):
    code = "role_read_only"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class NewStaff:
    account: StaffAccount
    totp_secret: str

    def provisioning_uri(self, issuer: str) -> str:
        return totp.provisioning_uri(self.totp_secret, account=self.account.email, issuer=issuer)


def create_staff_account(
    session: Session, box: SecretBox, *, email: str, password: str, role: str, now: datetime
) -> NewStaff:
    email = normalise_email(email)
    errors: dict[str, list[str]] = {}
    if "@" not in email or len(email) > 320:
        errors["email"] = ["an e-mail address"]
    if len(password) < passwords.MIN_LENGTH:
        errors["password"] = [f"at least {passwords.MIN_LENGTH} characters"]
    if role not in ROLES:
        errors["role"] = [f"one of {', '.join(ROLES)}"]
    if errors:
        raise ValidationFailedError("the staff account is not valid", errors=errors)
    if session.scalars(sa.select(StaffAccount.id).where(StaffAccount.email == email)).first():
        raise ConflictError(f"{email} has an account already", code="staff_email_taken")
    secret = totp.new_secret()
    account = StaffAccount(
        id=new_id("stf"),
        email=email,
        password_hash=passwords.hash_password(password),
        totp_secret_encrypted=box.encrypt(secret),
        role=role,
        failed_logins=0,
        created_at=now,
        updated_at=now,
    )
    session.add(account)
    session.flush()
    return NewStaff(account, secret)


def find_workspace(session: Session, slug: str) -> Tenant | None:
    tenant = session.scalars(sa.select(Tenant).where(Tenant.slug == slug.strip().lower())).first()
    if tenant is None or tenant.status != "active":
        return None
    return tenant


def _check_lock(account: StaffAccount, now: datetime) -> None:
    if account.locked_until is not None and account.locked_until > now:
        raise AccountLockedError(
            "too many failed attempts: this account is locked for a while; try again later"
        )


def _fail(account: StaffAccount, now: datetime) -> None:
    account.failed_logins += 1
    over = account.failed_logins - FREE_FAILURES
    if over > 0:
        lock = min(FIRST_LOCK * 2 ** (over - 1), LONGEST_LOCK)
        account.locked_until = now + lock
    account.updated_at = now


def check_password(
    session: Session, *, workspace: str, email: str, password: str, now: datetime
) -> StaffAccount:
    """First factor. Scopes `session` to the workspace's tenant; commits nothing itself, but
    the caller must commit a failure too (the count is the throttle)."""
    tenant = find_workspace(session, workspace)
    account = None
    if tenant is not None:
        tenancy.set_tenant(session, tenant.id)
        account = session.scalars(
            sa.select(StaffAccount).where(StaffAccount.email == normalise_email(email))
        ).first()
    if account is None or account.disabled_at is not None:
        passwords.verify_password(password, passwords.DUMMY_HASH)  # same time as a real check
        raise LoginFailedError("the workspace, e-mail address or password is wrong")
    _check_lock(account, now)
    if not passwords.verify_password(password, account.password_hash):
        _fail(account, now)
        raise LoginFailedError("the workspace, e-mail address or password is wrong")
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash_password(password)
    return account


def get_staff(session: Session, tenant_id: str, staff_id: str) -> StaffAccount:
    tenancy.set_tenant(session, tenant_id)
    account = session.scalars(sa.select(StaffAccount).where(StaffAccount.id == staff_id)).first()
    if account is None or account.disabled_at is not None:
        raise LoginFailedError("sign in again")
    return account


@dataclass(frozen=True)
class OpenedStaffSession:
    session: StaffSession
    cookie: str


def check_code_and_open_session(
    session: Session, box: SecretBox, account: StaffAccount, code: str, *, now: datetime
) -> OpenedStaffSession:
    """Second factor; on success the failure count resets and a session opens."""
    _check_lock(account, now)
    step = totp.verify(
        box.decrypt(account.totp_secret_encrypted),
        code,
        now.timestamp(),
        last_step=account.totp_last_step,
    )
    if step is None:
        _fail(account, now)
        raise LoginFailedError("the code is wrong or was used already")
    account.totp_last_step = step
    account.failed_logins = 0
    account.locked_until = None
    account.last_login_at = now
    account.updated_at = now
    secret = secrets.token_urlsafe(32)
    opened = StaffSession(
        id=new_id("ssn"),
        staff_id=account.id,
        secret_hash=_digest(secret),
        livemode=True,
        created_at=now,
        expires_at=now + SESSION_TTL,
    )
    session.add(opened)
    session.flush()
    return OpenedStaffSession(opened, f"{account.tenant_id}.{opened.id}.{secret}")


def load_staff_session(
    session: Session, cookie: str, *, now: datetime
) -> tuple[StaffSession, StaffAccount]:
    parts = cookie.split(".")
    if len(parts) != 3 or not all(parts) or len(cookie) > 300:
        raise StaffSessionInvalidError("sign in to the dashboard")
    tenant_id, session_id, secret = parts
    tenancy.set_tenant(session, tenant_id)
    found = session.scalars(sa.select(StaffSession).where(StaffSession.id == session_id)).first()
    account = None
    if found is not None:
        account = session.scalars(
            sa.select(StaffAccount).where(StaffAccount.id == found.staff_id)
        ).first()
    if (
        found is None
        or account is None
        or account.disabled_at is not None
        or not hmac.compare_digest(found.secret_hash, _digest(secret))
        or found.ended_at is not None
        or found.expires_at <= now
    ):
        tenancy.set_tenant(session, None)
        raise StaffSessionInvalidError("sign in to the dashboard")
    return found, account


def require_write(account: StaffAccount) -> None:
    if account.role not in WRITE_ROLES:
        raise ReadOnlyRoleError("your role can look, not change anything")


def require_owner(account: StaffAccount) -> None:
    if account.role != "owner":
        raise ForbiddenError("only an owner may do this", code="role_not_owner")
