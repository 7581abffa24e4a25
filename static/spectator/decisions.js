// The decision panel: action-probability bars (the chosen action marked), a state-value
// sparkline and the Q-values of the bot's latest decision.
import { $, h, setText } from "./dom.js";
import { isNum, significant } from "./format.js";

const SPARK_POINTS = 120;

function entries(value) {
  if (Array.isArray(value)) return value.map((v, i) => [String(i), v]);
  if (value && typeof value === "object") return Object.entries(value);
  return [];
}

function isSelected(selected, name, index) {
  if (selected == null) return false;
  return String(selected) === name || (typeof selected === "number" && selected === index);
}

function stateValueOf(value) {
  if (isNum(value)) return value;
  const numbers = entries(value).map(([, v]) => v).filter(isNum);
  return numbers.length ? numbers.reduce((a, b) => a + b, 0) / numbers.length : null;
}

export class DecisionPanel {
  constructor(root) {
    this.root = root;
    this.bars = $("#action-bars", root);
    this.empty = $("#decision-empty", root);
    this.meta = $("#decision-meta", root);
    this.valueBox = $("#state-value-box", root);
    this.valueNow = $("#state-value-now", root);
    this.spark = $("#state-value-spark", root);
    this.qBox = $("#q-values-box", root);
    this.qList = $("#q-values", root);
    this.rows = new Map();
    this.values = [];
    this.count = 0;
  }

  update(decision) {
    this.count += 1;
    this.root.dataset.decisions = String(this.count);
    this.empty.hidden = true;
    const probabilities = entries(decision.action_probabilities);
    const names = probabilities.length ? probabilities : entries(decision.q_values).map(([name]) => [name, null]);
    const selected = decision.selected_action;
    this.renderBars(probabilities, selected);
    this.renderQ(entries(decision.q_values), selected, names);
    const value = stateValueOf(decision.state_values);
    if (value != null) {
      this.values.push(value);
      if (this.values.length > SPARK_POINTS) this.values.shift();
      this.valueBox.hidden = false;
      setText(this.valueNow, `V(s) = ${significant(value, 4)}`);
      this.drawSpark();
    }
    const where = [decision.episode != null ? `episode ${decision.episode}` : "", decision.step != null ? `step ${decision.step}` : ""];
    setText(this.meta, where.filter(Boolean).join(" · "));
  }

  renderBars(probabilities, selected) {
    this.bars.hidden = probabilities.length === 0;
    const seen = new Set();
    probabilities.forEach(([name, p], index) => {
      seen.add(name);
      let row = this.rows.get(name);
      if (!row) {
        const fill = h("span", { class: "bar-fill" });
        const pct = h("span", { class: "bar-pct mono" });
        const mark = h("span", { class: "bar-chosen" }, "chosen");
        // Action names are user text: text nodes only.
        const el = h("li", { class: "bar", dataset: { action: name } },
          h("span", { class: "bar-label" }, name, mark), h("span", { class: "bar-track" }, fill), pct);
        row = { el, fill, pct, mark };
        this.rows.set(name, row);
      }
      if (this.bars.children[index] !== row.el) this.bars.insertBefore(row.el, this.bars.children[index] || null);
      const share = isNum(p) ? Math.max(0, Math.min(1, p)) : 0;
      row.fill.style.width = `${(share * 100).toFixed(1)}%`;
      row.el.dataset.p = share.toFixed(4);
      setText(row.pct, `${(share * 100).toFixed(1)}%`);
      const chosen = isSelected(selected, name, index);
      row.el.classList.toggle("is-chosen", chosen);
      row.el.setAttribute("aria-label", `${name}: ${(share * 100).toFixed(1)}%${chosen ? ", chosen" : ""}`);
    });
    for (const [name, row] of this.rows) {
      if (!seen.has(name)) {
        row.el.remove();
        this.rows.delete(name);
      }
    }
  }

  renderQ(qValues, selected) {
    this.qBox.hidden = qValues.length === 0;
    if (!qValues.length) return;
    const numbers = qValues.map(([, v]) => v).filter(isNum);
    const max = Math.max(...numbers);
    const min = Math.min(...numbers);
    const span = max - min || 1;
    this.qList.replaceChildren(
      ...qValues.map(([name, value], index) => {
        const fill = h("span", { class: "q-fill" });
        fill.style.width = `${isNum(value) ? (8 + (92 * (value - min)) / span).toFixed(1) : 0}%`;
        return h("li", { class: `q${value === max ? " is-best" : ""}${isSelected(selected, name, index) ? " is-chosen" : ""}` },
          h("span", { class: "q-label" }, name), h("span", { class: "q-track" }, fill), h("span", { class: "q-value mono" }, significant(value, 4)));
      }),
    );
  }

  drawSpark() {
    const canvas = this.spark;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 300;
    const height = canvas.clientHeight || 56;
    if (canvas.width !== Math.round(width * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const values = this.values.length === 1 ? [this.values[0], this.values[0]] : this.values;
    if (!values.length) return;
    const min = Math.min(...values);
    const max = Math.max(...values);
    const span = max - min || 1;
    const x = (i) => (i / (values.length - 1)) * width;
    const y = (v) => height - 4 - ((v - min) / span) * (height - 8);
    const style = getComputedStyle(document.documentElement);
    ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.strokeStyle = style.getPropertyValue("--accent").trim() || "#5b9cff";
    ctx.lineWidth = 1.75;
    ctx.stroke();
    ctx.lineTo(x(values.length - 1), height);
    ctx.lineTo(x(0), height);
    ctx.closePath();
    ctx.fillStyle = style.getPropertyValue("--accent-soft").trim() || "rgba(91,156,255,0.15)";
    ctx.fill();
  }
}
