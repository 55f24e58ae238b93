"""The run page's SVG charts: text readable at the narrowest rendered size, y-axes from zero, hover
values on every point (thinned), labelled limits and resume marks, a text alternative."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from app.portal.charts import MIN_RENDERED_WIDTH, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def _rendered_px(root: ET.Element, text: ET.Element, at_width: float) -> float:
    view_width = float(root.get("viewBox", "").split()[2])
    size = text.get("font-size") or root.get("font-size")
    assert size is not None, f"text without a font size: {ET.tostring(text)!r}"
    return float(size) * at_width / view_width


def _ticks(root: ET.Element) -> list[float]:
    return [float(t.text or "") for t in root.iter(f"{SVG}text")
            if t.get("class") == "tick" and re.fullmatch(r"-?[0-9.e+-]+", t.text or "")]


def test_every_text_is_at_least_12_px_at_the_narrowest_chart() -> None:
    charts = [line_chart([("loss", [(1, 0.9), (2, 0.7), (3, 0.65)])], title="Loss"),
              line_chart([("ε", [(1, 0.1), (50, 0.6)])], title="Privacy spent (ε)", limit=1.0,
                         limit_label="planned ε"),
              line_chart([("loss", [])], title="Loss")]
    for svg in charts:
        root = _parse(str(svg))
        texts = list(root.iter(f"{SVG}text"))
        assert texts
        for text in texts:
            assert _rendered_px(root, text, MIN_RENDERED_WIDTH) >= 12, ET.tostring(text)


def test_y_axis_starts_at_zero_for_loss_accuracy_and_epsilon() -> None:
    for svg in (line_chart([("loss", [(1, 0.69), (2, 0.66), (3, 0.64)])], title="Loss"),
                line_chart([("accuracy", [(1, 0.5), (2, 0.75)])], title="Reward accuracy"),
                line_chart([("ε", [(1, 0.096), (81, 0.613)])], title="Privacy spent (ε)", limit=1.0)):
        ticks = _ticks(_parse(str(svg)))
        assert ticks and min(ticks) == 0, ticks
        assert max(ticks) >= 0.64


def test_negative_values_extend_the_axis_below_zero_and_from_zero_can_be_turned_off() -> None:
    assert min(_ticks(_parse(str(line_chart([("margin", [(1, -0.5), (2, 0.4)])], title="Margin"))))) == -0.5
    ticks = _ticks(_parse(str(line_chart([("x", [(1, 5.0), (2, 6.0)])], title="x", from_zero=False))))
    assert min(ticks) == 5.0


def test_each_point_has_a_hover_title_with_its_global_step() -> None:
    root = _parse(str(line_chart([("ε", [(27, 0.2), (81, 0.613), (200, 0.996)])], title="Privacy spent (ε)")))
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert {"step 27: ε 0.2", "step 81: ε 0.613", "step 200: ε 0.996"} <= set(titles), titles
    hover = [c for c in root.iter(f"{SVG}circle") if c.get("class") == "point"]
    assert len(hover) == 3
    desc = root.find(f"{SVG}desc")
    assert desc is not None and "from step 27 to step 200, latest 0.996" in (desc.text or ""), desc


def test_hover_points_are_thinned_but_keep_the_first_and_the_last() -> None:
    root = _parse(str(line_chart([("loss", [(s, 1 / s) for s in range(1, 5001)])], title="Loss")))
    titles = [t.text or "" for t in root.iter(f"{SVG}title") if (t.text or "").startswith("step ")]
    assert 100 <= len(titles) <= 300
    assert titles[0] == "step 1: loss 1" and titles[-1] == "step 5000: loss 0.0002"


def test_two_labelled_limits_and_a_resume_mark() -> None:
    svg = str(line_chart([("ε", [(1, 0.1), (150, 0.9)])], title="Privacy spent (ε)",
                         limits=[(1.0, "planned ε"), (8.0, "dataset budget")], marks=[(81, "resumed")]))
    root = _parse(svg)
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "planned ε 1" in labels and "dataset budget 8" in labels and "resumed" in labels
    limits = [line for line in root.iter(f"{SVG}line") if "limit" in (line.get("class") or "").split()]
    assert len(limits) == 2
    (mark,) = [line for line in root.iter(f"{SVG}line") if line.get("class") == "segment"]
    assert mark.get("x1") == mark.get("x2")
    assert max(_ticks(root)) >= 8  # the budget is on the axis, not above it
    for text in root.iter(f"{SVG}text"):
        assert _rendered_px(root, text, MIN_RENDERED_WIDTH) >= 12, ET.tostring(text)
