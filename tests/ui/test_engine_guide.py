"""The engine panel in an artist's words: names by what engines are good at, solver parameters
under a collapsed Advanced box, a Reset button, tooltips about the matte."""

from __future__ import annotations

from mattestudio.engines import registry
from mattestudio.ui.engine_guide import ENGINES, PARAMS


def test_every_registered_engine_and_parameter_has_an_artists_description():
    for name in registry.names():
        assert name in ENGINES, name
        for p in registry.info(name).params:
            assert p.name in PARAMS or p.name in ("checkpoint", "classifier", "fb_head"), p.name


def test_engine_panel_names_engines_by_use_and_hides_solver_params(window):
    panel = window.engine_panel
    labels = {panel.combo.itemData(i): panel.combo.itemText(i) for i in range(panel.combo.count())}
    assert labels["closed-form"] == "Soft edges and hair: fast"
    assert labels["sim"].startswith("Hair, fur, glass, smoke")
    panel.set_engine("closed-form")
    assert "all-rounder" in panel.good_at.text()
    assert panel.form_host.isHidden()  # under Advanced, collapsed
    box = panel.form_host.parentWidget()
    assert box.title().startswith("Advanced") and not box.isChecked()
    box.setChecked(True)
    assert not panel.form_host.isHidden()
    eps = next(f for f in panel.fields if f.param.name == "epsilon")
    assert eps.widget.toolTip().startswith("Higher gives smoother, softer mattes")
    eps.set(1e-3)
    assert panel.params() == {"epsilon": 1e-3}
    assert panel.reset_button.text() == "Reset"
    panel.reset_button.click()
    assert panel.params() == {}
