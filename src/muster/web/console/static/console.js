// Muster console: the Copy buttons. Everything else works without JavaScript.
"use strict";

function copyFrom(button) {
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  const status = document.querySelector(`[data-copy-status="${field.id}"]`);
  const done = (ok) => {
    const label = button.textContent;
    button.textContent = ok ? "Copied" : "Press Ctrl+C";
    if (status) status.textContent = ok ? "Copied to the clipboard." : "Select the text and copy it.";
    window.setTimeout(() => { button.textContent = label; }, 2000);
  };
  field.focus();
  field.select();
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(() => done(true), () => done(document.execCommand("copy")));
  } else {
    done(document.execCommand("copy"));
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (button) copyFrom(button);
});

document.addEventListener("keydown", (event) => {
  // Escape closes a secret's dialog the same way its Close button does.
  const close = document.querySelector("#close-token, [data-dialog-close]");
  if (event.key === "Escape" && close) close.click();
});

document.addEventListener("DOMContentLoaded", () => {
  const copy = document.querySelector("#token-dialog #copy-token, [role=dialog] [data-dialog-focus]");
  if (copy) copy.focus();
});
