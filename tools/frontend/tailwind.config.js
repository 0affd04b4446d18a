// Tailwind scans the templates (and the few class names Rust code puts into HTML) and emits
// only the utilities they use. Dark mode follows the system setting.
/** @type {import('tailwindcss').Config} */
module.exports = {
  content: ["../../templates/**/*.stpl", "../../src/web/**/*.rs"],
  darkMode: "media",
  theme: { extend: {} },
  plugins: [],
};
