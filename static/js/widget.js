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
    // Not for regions that refresh themselves while the user works in the popup (the availability grid, the
    // attendee picker's options): focus stays where the user is.
    var source = event.detail && event.detail.elt;
    if (source && source.closest && source.closest("[data-keep-focus]")) {
      return;
    }
    var field = event.target.querySelector(".modal input:not([type=hidden]), .modal button");
    if (field) {
      field.focus();
    }
  });
})();

// The schedule form: the attendee picker and its chips, suggested times, and the availability grid that follows
// every change of attendees, date or time (debounced by htmx: hx-trigger="availability-changed delay:300ms").
(function () {
  "use strict";

  var ADDRESS = /^[^@\s<>(),;:"\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

  document.documentElement.classList.add("js");

  function formOf(element) {
    return element && element.closest ? element.closest("#schedule-form") : null;
  }

  // What the grid shows depends on these fields only; an unchanged set asks Exchange nothing.
  function availabilityKey(form) {
    var data = new FormData(form);
    return ["kind", "start", "end", "all_day"].map(function (name) { return data.get(name) || ""; }).join("|") +
      "|" + data.getAll("attendee").join(";");
  }

  function refreshAvailability(form) {
    var grid = form.querySelector("#availability");
    if (!grid || !window.htmx) {
      return;
    }
    var key = availabilityKey(form);
    if (grid.dataset.asked === key) {
      return;
    }
    grid.dataset.asked = key;
    window.htmx.trigger(grid, "availability-changed");
  }

  function chosenAddresses(form) {
    return Array.prototype.map.call(form.querySelectorAll(".chip-remove"), function (button) {
      return button.value;
    });
  }

  function addChip(form, value, label, address) {
    var chips = form.querySelector("#attendee-chips");
    var template = form.querySelector("#chip-template");
    if (!chips || !template || chosenAddresses(form).indexOf(address) !== -1) {
      return;
    }
    var chip = template.content.firstElementChild.cloneNode(true);
    chip.querySelector(".chip-text").textContent = label === address ? address : label + " ";
    if (label !== address) {
      var hint = document.createElement("span");
      hint.className = "hint";
      hint.textContent = address;
      chip.querySelector(".chip-text").appendChild(hint);
    }
    chip.querySelector("input[name=attendee]").value = value;
    var remove = chip.querySelector(".chip-remove");
    remove.value = address;
    remove.setAttribute("aria-label", "Remove " + label);
    chips.appendChild(chip);
  }

  function clearPicker(form) {
    var search = form.querySelector("#attendee-search");
    var options = form.querySelector("#attendee-options");
    if (search) {
      search.value = "";
      search.setAttribute("aria-expanded", "false");
      search.focus();
    }
    if (options) {
      options.replaceChildren();
    }
  }

  function pick(option) {
    var form = formOf(option);
    addChip(form, option.dataset.value, option.dataset.label, option.dataset.address);
    clearPicker(form);
    refreshAvailability(form);
  }

  document.addEventListener("click", function (event) {
    var option = event.target.closest(".attendee-option");
    if (option && formOf(option)) {
      pick(option);
      return;
    }
    var remove = event.target.closest(".chip-remove");
    if (remove && formOf(remove)) {
      event.preventDefault();  // no round trip: the chip (and its hidden input) just goes
      var form = formOf(remove);
      remove.closest(".chip").remove();
      refreshAvailability(form);
      var search = form.querySelector("#attendee-search");
      if (search) {
        search.focus();
      }
      return;
    }
    var offer = event.target.closest(".offer");
    if (offer && formOf(offer)) {
      event.preventDefault();  // apply the suggested time to Start and End; the grid then marks it
      var owner = formOf(offer);
      owner.querySelector("#meeting-start").value = offer.dataset.start;
      owner.querySelector("#meeting-end").value = offer.dataset.end;
      var allDay = owner.querySelector("#meeting-all-day");
      if (allDay) {
        allDay.checked = false;
      }
      refreshAvailability(owner);
      owner.querySelector("#meeting-start").focus();
      return;
    }
    var menuItem = event.target.closest(".new-menu a");
    if (menuItem) {
      menuItem.closest("details").open = false;
    }
  });

  // Enter in the attendee box takes the first person offered, or the typed address itself.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !event.target.matches || !event.target.matches("#attendee-search")) {
      return;
    }
    event.preventDefault();
    var form = formOf(event.target);
    var first = form.querySelector(".attendee-option");
    var typed = event.target.value.trim();
    if (first) {
      pick(first);
    } else if (ADDRESS.test(typed)) {
      addChip(form, typed, typed, typed.toLowerCase());
      clearPicker(form);
      refreshAvailability(form);
    }
  });

  ["change", "keyup"].forEach(function (kind) {
    document.addEventListener(kind, function (event) {
      var form = formOf(event.target);
      if (form && event.target.closest(".for-availability")) {
        refreshAvailability(form);
      }
    });
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target.id === "attendee-options" || (event.detail && event.detail.elt &&
        event.detail.elt.id === "attendee-search")) {
      var search = document.getElementById("attendee-search");
      var options = document.getElementById("attendee-options");
      if (search && options) {
        search.setAttribute("aria-expanded", options.querySelector(".attendee-option") ? "true" : "false");
      }
    }
  });

  // A form that arrives (in a popup, or re-rendered after an error) asks for what it shows already.
  document.addEventListener("htmx:load", function (event) {
    var form = event.target.matches && event.target.matches("#schedule-form") ? event.target :
      event.target.querySelector && event.target.querySelector("#schedule-form");
    var grid = form && form.querySelector("#availability");
    if (grid) {
      grid.dataset.asked = availabilityKey(form);
    }
  });
})();

