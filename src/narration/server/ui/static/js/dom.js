// Building DOM nodes. Text always goes in as text (never as HTML): narrated strings are data.
// Styles go through the CSSOM (the content security policy forbids style attributes).

/** h("a", {href: "#/", class: "x"}, "text", child) -> an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") {
      for (const [name, v] of Object.entries(value)) el.style.setProperty(name, v);
    }
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace everything inside `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An <option> list for a <select>, keeping `current` selected. */
export function options(select, items, current) {
  const wanted = items.map(([value, label]) => value + "\u0000" + label).join("\u0001");
  if (select.dataset.items !== wanted) {
    select.dataset.items = wanted;
    fill(select, items.map(([value, label]) => h("option", { value }, label)));
  }
  select.value = current;
}
