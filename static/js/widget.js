// Behaviour the pages need beyond htmx: closing popups. No inline scripts: the CSP allows this file only.
(function () {
  "use strict";

  function closeModal(target) {
    var backdrop = target.closest(".modal-backdrop");
    if (backdrop) {
      backdrop.remove();
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest(".close-modal");
    if (!button) {
      return;
    }
    if (button.dataset.reload === "true") {
      window.location.reload();
      return;
    }
    closeModal(button);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      document.querySelectorAll(".modal-backdrop").forEach(function (backdrop) { backdrop.remove(); });
    }
  });

  // Focus the first field of a popup when it opens, for keyboard users.
  document.addEventListener("htmx:afterSwap", function (event) {
    var field = event.target.querySelector(".modal input:not([type=hidden]), .modal button");
    if (field) {
      field.focus();
    }
  });
})();
