// The new-room form: show the password and allowed-users fields only where they apply.
import { $, $$ } from "./dom.js";

const form = $("#room-create-form");
if (form) {
  const sync = () => {
    const level = (form.querySelector("input[name=access_level]:checked") || {}).value;
    $("#field-password").hidden = level !== "password";
    $("#field-allowed").hidden = !(level === "invite_only" || level === "private");
  };
  $$("input[name=access_level]", form).forEach((input) => input.addEventListener("change", sync));
  sync();
}
