// Progressive enhancement: live feedback on the VAT ID field. Without JavaScript the form
// still works; the server checks everything again on save.
(function () {
  "use strict";
  var field = document.getElementById("vat_id");
  if (!field) { return; }
  var out = document.getElementById("vat_id-feedback");
  var timer = null;
  var seq = 0;

  function post(url, value) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": field.dataset.csrf },
      body: JSON.stringify({ vat_id: value })
    }).then(function (r) { return r.json(); });
  }

  function show(text, kind) {
    out.textContent = text;
    out.className = "feedback " + (kind || "");
    if (kind === "error") { field.setAttribute("aria-invalid", "true"); } else { field.removeAttribute("aria-invalid"); }
  }

  function check() {
    var value = field.value.trim();
    var mine = ++seq;
    if (!value) { show("", ""); return; }
    post(field.dataset.syntaxUrl, value).then(function (res) {
      if (mine !== seq) { return; }
      if (!res.valid) { show(res.message, "error"); return; }
      show(res.message, "");
      post(field.dataset.verifyUrl, res.vat_id).then(function (v) {
        if (mine !== seq) { return; }
        show(v.message, v.status === "valid" ? "ok" : (v.status === "invalid" ? "error" : ""));
      });
    });
  }

  field.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  });
  field.addEventListener("change", check);
})();
