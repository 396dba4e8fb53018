/** The CSRF token Django expects in the X-CSRFToken header of unsafe requests. */
export function csrfToken(form) {
  const cookie = document.cookie
    .split(";")
    .map((part) => part.trim())
    .find((part) => part.startsWith("csrftoken="));
  if (cookie) {
    return decodeURIComponent(cookie.slice("csrftoken=".length));
  }
  const field = form ? form.querySelector("input[name=csrfmiddlewaretoken]") : null;
  return field ? field.value : "";
}
