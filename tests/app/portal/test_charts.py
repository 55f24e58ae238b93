"""The run page's SVG charts: text readable at the narrowest rendered size, y-axes from zero."""

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
