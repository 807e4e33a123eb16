// The card page: Stripe.js collects the card in its own frames (the numbers never reach
// abowerk) and confirms the SetupIntent; Stripe then sends the browser to the portal's return
// route, which asks Stripe what happened.
(function () {
  "use strict";
  var form = document.getElementById("card-setup");
  if (!form) { return; }
  var out = document.getElementById("card-feedback");
  var button = document.getElementById("card-submit");
  var data = form.dataset;

  function problem(text) {
    out.textContent = text;
    out.className = "feedback error";
    button.disabled = false;
  }

  if (typeof window.Stripe !== "function") {
    button.disabled = true;
    out.textContent = data.unavailable;
    out.className = "feedback error";
    return;
  }
  var stripe = window.Stripe(data.publishableKey, { locale: data.locale });
  var elements = stripe.elements({ clientSecret: data.clientSecret });
  elements.create("payment").mount("#card-element");

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    stripe.confirmSetup({
      elements: elements,
      confirmParams: { return_url: data.returnUrl }
    }).then(function (result) {
      // only reached when Stripe could not redirect: the card was refused or incomplete
      if (result.error) { problem(result.error.message || data.unavailable); }
    });
  });
}());
