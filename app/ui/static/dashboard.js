// Progressive enhancement only: every page works without this file.
// Forms with data-confirm ask first; selects with data-autosubmit submit their form.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field.matches("select[data-autosubmit]") && field.form) field.form.requestSubmit();
});
