// The few behaviours htmx does not cover. No inline handlers anywhere (the page's CSP forbids them).
(function () {
  "use strict";
  // The log tab follows the end of the output while "follow the end" is ticked.
  document.addEventListener("htmx:sseMessage", function (event) {
    var box = event.target.closest ? event.target.closest(".logbox") : null;
    var follow = document.getElementById("follow-tail");
    if (box && (!follow || follow.checked)) {
      box.scrollTop = box.scrollHeight;
    }
  });
  // A job file picked from disk fills the editor (nothing is uploaded until Submit).
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[type=file][data-fills]") || !input.files.length) {
      return;
    }
    var target = document.getElementById(input.getAttribute("data-fills"));
    var reader = new FileReader();
    reader.onload = function () { target.value = reader.result; target.focus(); };
    reader.readAsText(input.files[0]);
  });
  // Messages can be dismissed.
  document.addEventListener("click", function (event) {
    if (event.target.matches && event.target.matches("[data-dismiss]")) {
      var alert = event.target.closest(".alert");
      if (alert) { alert.remove(); }
    }
  });
})();
