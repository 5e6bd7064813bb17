// Shows a waiting state while the two replies are generated and prevents double submission.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form.wait").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      var w = form.querySelector(".waiting");
      if (w) { w.hidden = false; }
    });
  });
});
