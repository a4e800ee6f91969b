"""Engines and solver parameters in an artist's words: what each engine is good at, and what each
parameter does to the matte. The engine panel shows these names and keeps the solver parameters
in a collapsed "Advanced" box."""

from __future__ import annotations

from PySide6.QtWidgets import QGroupBox, QVBoxLayout, QWidget

#: engine -> (name in the picker, what it is good at). Engines not listed keep their own name.
ENGINES = {
    "closed-form": (
        "Soft edges and hair: fast",
        "The all-rounder: hair and soft edges with a reasonably tight edge band; in Live mode it "
        "re-solves only around your last stroke.",
    ),
    "information-flow": (
        "Best classical detail: hair, haze, holes",
        "Links each edge pixel to similar colours near and far, so background showing through "
        "hair and wide bands come out clean; the best classical matte on the benchmark images "
        "(docs/benchmarks.md), in under three times the all-rounder's time; the command "
        "line's default. Camera-size photos are solved at a reduced size, then sharpened at "
        "full resolution.",
    ),
    "shared-sampling": (
        "Hair and fur, with its own colours",
        "Picks foreground and background colour samples for every edge pixel; strong on hair "
        "and fur with distinct colours, and gives clean cut-out colours.",
    ),
    "knn": (
        "Wide bands and holes between strands",
        "Matches colours across the whole image, so it fills wide edge bands and background "
        "showing through hair; slower.",
    ),
    "learning-based": (
        "Soft edges and hair: alternative",
        "Learns a local colour model per window; close to the all-rounder on the benchmark "
        "images (docs/benchmarks.md), slower. Try it when the all-rounder leaves speckles.",
    ),
    "large-kernel": (
        "Very wide edge bands (slow)",
        "Large windows carry the matte across wide unknown areas such as smoke or motion blur; "
        "slow, and blurs the finest strands.",
    ),
    "random-walk": (
        "Hard-edged objects",
        "Follows strong colour edges like a segmentation; weak on hair and semi-transparency.",
    ),
    "closed-form-pymatting": (
        "Soft edges and hair: reference (slow)",
        "The same result as the fast all-rounder from the reference implementation; for checks.",
    ),
    "dim": (
        "Complex scenes (deep network, DIM)",
        "A neural network trained on real mattes: cluttered backgrounds, similar colours in "
        "front and behind. Needs its weights (Import checkpoint).",
    ),
    "sim": (
        "Hair, fur, glass, smoke (deep network, SIM)",
        "A neural network that first recognises the kind of edge (hair, fur, glass, smoke, "
        "lace...) and mattes it accordingly. Needs its weights (Import checkpoint).",
    ),
    "vitmatte": (
        "Best detail on hair and fur (deep network, ViTMatte)",
        "A vision-transformer network with the finest strands of the deep engines; slower on "
        "the CPU. Needs its weights (mattestudio models pull vitmatte-small-composition-1k).",
    ),
}

#: parameter -> what it does to the matte (shown before the solver's own help).
PARAMS = {
    "epsilon": "Higher gives smoother, softer mattes and fewer speckles; lower keeps finer "
    "strands but may add noise.",
    "radius": "Larger windows spread the matte further into wide edge bands but blur the "
    "finest strands.",
    "sigma": "Smaller follows colour edges more sharply.",
    "n_neighbors": "More neighbours give smoother mattes, fewer give more detail.",
    "incremental": "Live mode: re-solve only around your last stroke (much faster); Run always "
    "solves everything.",
    "tolerance": "Live mode only: how far an incremental re-solve may differ from a full one.",
    "memory_gb": "How much memory the solver may use; larger photos are solved coarse to fine "
    "(much faster, the matte changes very little).",
    "fine_residual": "Large photos only: lower re-solves more of the edge at full resolution "
    "(slower, slightly more exact); 0 re-solves all of it.",
    "workers": "Does not change the matte, only how many cores a large photo's solve uses.",
    "rtol": "Smaller is more exact and slower; the matte rarely changes visibly.",
    "maxiter": "Safety limit on solver iterations; the matte rarely changes visibly.",
    "context": "More surrounding picture helps the network recognise the subject.",
    "tile": "Does not change the matte much; lower it when memory runs out.",
    "roi": "Work only around the edge band (faster, same matte).",
    "precision": "Speed vs exactness of the arithmetic; the matte changes very little.",
    "device": "Where the network runs; the matte is the same.",
    "k_mix": "More colour-mixture neighbours give smoother mattes; fewer keep finer detail.",
    "trim_radius": "Edge pixels this close to a painted region, and of its colour, are taken as "
    "solid before solving: faster and cleaner; 0 keeps every unknown pixel for the solver "
    "(faint wisps right at the painted edge).",
    "trim_tolerance": "How alike in colour an edge pixel must be to the painted region next to it "
    "to be taken as solid; lower keeps more faint detail.",
    "k_ku": "More known-colour neighbours make the edge follow the painted regions' colours more.",
    "k_uu": "More edge-to-edge neighbours spread the matte more evenly along the band.",
    "w_ku": "Higher pulls edge pixels harder towards the painted foreground/background colours.",
    "w_uu": "Higher makes similar-looking edge pixels take more similar alpha.",
    "w_local": "Higher gives smoother transitions between neighbouring pixels.",
    "band": "Wider uses more of the painted area around the edge as colour samples.",
    "mix_known_rows": "On: cleaner mattes near the painted regions (the default); off: the paper's "
    "method.",
    "ku_fit": "colour: edges follow colour (the default); colour+position: the paper's form.",
    "knn_eps": "Higher searches colour samples faster and less exactly; the matte rarely changes "
    "visibly. 0 lets a re-run after a stroke re-solve only around it.",
    "levels": "Clears faint haze (alpha near 0 or 1 snaps to 0 or 1); 0 keeps every faint strand.",
}


def engine_label(name: str, fallback: str) -> str:
    return ENGINES.get(name, (fallback, ""))[0]


def engine_tip(name: str, description: str) -> str:
    good_at = ENGINES.get(name, ("", ""))[1]
    return f"{good_at}\n\n{description}".strip()


def param_tip(param) -> str:
    what = PARAMS.get(param.name, "")
    return f"{what}\n{param.help}".strip() if what else param.help


def advanced_box(form_host: QWidget) -> QGroupBox:
    """``form_host`` inside a collapsible "Advanced" box, collapsed at first."""
    box = QGroupBox("Advanced (solver parameters)")
    box.setCheckable(True)
    box.setChecked(False)
    box.setToolTip("The engine's own parameters; the defaults suit most images")
    lay = QVBoxLayout(box)
    lay.setContentsMargins(4, 4, 4, 4)
    lay.addWidget(form_host)
    form_host.setVisible(False)
    box.toggled.connect(form_host.setVisible)
    return box
