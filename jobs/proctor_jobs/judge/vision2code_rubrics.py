"""Vision2Code's per-dataset rubrics (rubric version `recreation_rubric_v4_decimal_per_dataset`) and
its generic equal-weight rubric (`generic_recreation_rubric_v1_equal_weight`).

Source: image2code/vision2code @ 84821d92 (Apache-2.0), image2code/evaluation/dataset_rubrics.py
and generic_rubric.py. What decides a score is reproduced exactly — the 15 source datasets, each
one's four category ids, labels and weights (the first two categories are the *critical* ones),
its cap profile (STRICT, BALANCED or HARD) and its extra caps with their thresholds. The prose
the rater reads (category descriptions, dataset guidance and notes) is restated in our own words
with the same meaning.
"""

from __future__ import annotations

from typing import Any

RUBRIC_VERSION = "recreation_rubric_v4_decimal_per_dataset"
GENERIC_RUBRIC_VERSION = "generic_recreation_rubric_v1_equal_weight"

STRICT = {
    "name": "STRICT",
    "critical_any_threshold": 1.5,
    "critical_any_cap": 2.5,
    "critical_pair_threshold": 2.5,
    "critical_pair_cap": 3.5,
    "top_score_trigger": 4.8,
    "top_score_min_critical": 4.6,
    "top_score_cap": 4.5,
}
BALANCED = {
    "name": "BALANCED",
    "critical_any_threshold": 1.5,
    "critical_any_cap": 2.8,
    "critical_pair_threshold": 2.5,
    "critical_pair_cap": 4.0,
    "top_score_trigger": 4.8,
    "top_score_min_critical": 4.4,
    "top_score_cap": 4.5,
}
HARD = {
    "name": "HARD",
    "critical_any_threshold": 1.2,
    "critical_any_cap": 3.0,
    "critical_pair_threshold": 2.2,
    "critical_pair_cap": 4.0,
    "top_score_trigger": 4.8,
    "top_score_min_critical": 4.2,
    "top_score_cap": 4.5,
}


def _cat(id_: str, label: str, weight: float, description: str) -> dict[str, Any]:
    return {"id": id_, "label": label, "weight": weight, "description": description}


def _cap(
    type_: str,
    cap_to: float,
    reason: str,
    all_of: list[dict[str, Any]] | None = None,
    any_of: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {"type": type_, "cap_to": cap_to, "reason": reason, "all_of": all_of or [], "any_of": any_of or []}


def _below(category: str, limit: float = 2.4) -> dict[str, Any]:
    return {"id": category, "max": limit}


def _at_least(category: str, limit: float) -> dict[str, Any]:
    return {"id": category, "min": limit}


# The three "easy chart" datasets share categories and caps.
def _chart_caps() -> list[dict[str, Any]]:
    return [
        _cap(
            "chart_orientation_or_type_mismatch",
            3.5,
            "The core numbers survive but the chart type or orientation changed, so full credit is ruled "
            "out.",
            all_of=[_at_least("numeric_information_fidelity", 3.0), _below("structure_layout_fidelity", 2.9)],
        ),
        _cap(
            "material_text_or_numeric_error",
            2.5,
            "Material errors in numbers or text limit the score for this dataset.",
            any_of=[_below("numeric_information_fidelity"), _below("text_label_legibility_accuracy")],
        ),
    ]


def _geometry(dataset: str, guidance: str, notes: list[str], structure: str, labels: str, association: str):
    return {
        "dataset": dataset,
        "guidance": guidance,
        "prompt_notes": notes,
        "categories": [
            _cat("geometric_structure_precision", "Geometric Structure Precision", 0.35, structure),
            _cat("numbers_labels_markers", "Numbers, Labels, and Markers", 0.30, labels),
            _cat("association_placement_precision", "Association and Placement Precision", 0.20, association),
            _cat(
                "readability_completeness",
                "Readability and Completeness",
                0.15,
                "The figure reads clearly, nothing is clipped, and no major visible content is missing.",
            ),
        ],
        "cap_profile": STRICT,
        "extra_caps": [
            _cap(
                "geometric_relation_or_association_error",
                2.5,
                "Wrong geometric relations or labels that no longer clearly belong to their object limit "
                "the score.",
                any_of=[_below("geometric_structure_precision"), _below("association_placement_precision")],
            )
        ],
    }


DATASET_RUBRICS: dict[str, dict[str, Any]] = {
    "ChartQA": {
        "dataset": "ChartQA",
        "guidance": (
            "An easy chart dataset: hold the recreation to both the information and the chart's structure. "
            "Penalise a changed orientation or chart type, crowded or unreadable labels, a misplaced title "
            "and legends that overlap the plot."
        ),
        "prompt_notes": [
            "Reproduce the structure of the chart, not only what it says.",
            "A horizontal chart redrawn vertically keeps some credit for correct data but cannot score full "
            "marks.",
            "Readable text, correct numbers and faithful structure matter more than the colour scheme.",
        ],
        "categories": [
            _cat(
                "numeric_information_fidelity",
                "Numeric Information Fidelity",
                0.30,
                "The values, trends, order and the information a question about the chart needs are right.",
            ),
            _cat(
                "structure_layout_fidelity",
                "Structure and Layout Fidelity",
                0.30,
                "Chart type, orientation, title and legend placement and the overall structure match the "
                "reference.",
            ),
            _cat(
                "text_label_legibility_accuracy",
                "Text, Label, and Legibility Accuracy",
                0.25,
                "Labels, numbers, headings and other text are correct, readable and not crowded.",
            ),
            _cat(
                "cleanliness_completeness",
                "Cleanliness and Completeness",
                0.15,
                "Nothing is clipped, the chart reads cleanly and no major visible content is missing.",
            ),
        ],
        "cap_profile": STRICT,
        "extra_caps": _chart_caps(),
    },
    "dvqa": {
        "dataset": "dvqa",
        "guidance": (
            "An easy chart dataset: hold the recreation to the exact plotted information, the same chart "
            "structure and readable labels; approximately right semantics are not enough."
        ),
        "prompt_notes": [
            "A changed orientation or chart structure, or hard-to-read labels, should lower the score "
            "clearly.",
            "Penalise legends placed over the data and labels crowding the plot.",
            "Correct information, structure and readable text matter more than colours.",
        ],
        "categories": [
            _cat(
                "numeric_information_fidelity",
                "Numeric Information Fidelity",
                0.30,
                "The values, trends, grouping and the information a question about the chart needs are "
                "right.",
            ),
            _cat(
                "structure_layout_fidelity",
                "Structure and Layout Fidelity",
                0.30,
                "Chart type, grouped or stacked structure, orientation, title and legend placement match "
                "the reference.",
            ),
            _cat(
                "text_label_legibility_accuracy",
                "Text, Label, and Legibility Accuracy",
                0.25,
                "Axis labels, category labels, numbers and titles are correct, readable and not crowded.",
            ),
            _cat(
                "cleanliness_completeness",
                "Cleanliness and Completeness",
                0.15,
                "Nothing is clipped, the chart reads cleanly and no major visible content is missing.",
            ),
        ],
        "cap_profile": STRICT,
        "extra_caps": _chart_caps(),
    },
    "figureqa": {
        "dataset": "figureqa",
        "guidance": (
            "An easy chart dataset: hold the recreation to the same structure, readable labels and correct "
            "plotted information. Keeping the meaning alone does not earn a top score."
        ),
        "prompt_notes": [
            "Right data in a meaningfully different plot structure keeps partial credit, never full credit.",
            "Penalise crowded or unreadable labels.",
            "Small colour differences matter less than structure and readable information.",
        ],
        "categories": [
            _cat(
                "numeric_information_fidelity",
                "Numeric Information Fidelity",
                0.30,
                "The values, trends, relations between series and the information a question needs are "
                "right.",
            ),
            _cat(
                "structure_layout_fidelity",
                "Structure and Layout Fidelity",
                0.30,
                "Plot type, orientation, legend placement, series structure and overall layout match the "
                "reference.",
            ),
            _cat(
                "text_label_legibility_accuracy",
                "Text, Label, and Legibility Accuracy",
                0.25,
                "Legends, labels, headings and the chart's text are correct and readable.",
            ),
            _cat(
                "cleanliness_completeness",
                "Cleanliness and Completeness",
                0.15,
                "Nothing is clipped, the chart reads cleanly and no major visible content is missing.",
            ),
        ],
        "cap_profile": STRICT,
        "extra_caps": _chart_caps(),
    },
    "ChemVQA-2K": {
        "dataset": "ChemVQA-2K",
        "guidance": (
            "Judge the chemistry: the molecular structure, the chemical symbols, the bond lines and any "
            "coloured markers that flag differences. Losing a minor red difference marker costs a moderate "
            "amount, not the whole score."
        ),
        "prompt_notes": [
            "Atom symbols (O, OH, Cl, ...), charges and which bonds are which are critical.",
            "Keep coloured markers or difference lines where they carry meaning.",
            "A slightly different orientation matters less than correct structure and symbols.",
        ],
        "categories": [
            _cat(
                "molecular_structure_fidelity",
                "Molecular Structure Fidelity",
                0.40,
                "The molecule's connectivity, overall structure and core arrangement are right.",
            ),
            _cat(
                "chemical_symbol_accuracy",
                "Chemical Symbol Accuracy",
                0.30,
                "Atom labels, charges and bond notation are correct and readable.",
            ),
            _cat(
                "bond_line_marker_fidelity",
                "Bond Line and Marker Fidelity",
                0.20,
                "Bond lines, highlights, colour-coded difference markers and similar indicators are kept.",
            ),
            _cat(
                "readability_completeness",
                "Readability and Completeness",
                0.10,
                "The structure reads clearly, nothing is clipped and no major visible content is missing.",
            ),
        ],
        "cap_profile": BALANCED,
        "extra_caps": [
            _cap(
                "structure_or_symbol_failure",
                2.5,
                "A wrong molecular structure or wrong chemical symbols limit the score for this dataset.",
                any_of=[_below("molecular_structure_fidelity"), _below("chemical_symbol_accuracy")],
            )
        ],
    },
    "DocVQA": {
        "dataset": "DocVQA",
        "guidance": (
            "Judge the text and the structure first. Be strict, but fair on difficult infographics: when the "
            "reference itself is dense or hard to read, do not punish ambiguity the reference already has."
        ),
        "prompt_notes": [
            "Text that is legible in the reference should be correct and legible in the recreation.",
            "The layout should stay close to the reference; exact decoration matters less than information "
            "and structure.",
            "Exact text with moderate layout drift can still earn a solid score.",
        ],
        "categories": [
            _cat(
                "text_information_fidelity",
                "Text Information Fidelity",
                0.35,
                "The visible text, the numbers and the document's key information are correct.",
            ),
            _cat(
                "document_structure_layout",
                "Document Structure and Layout",
                0.30,
                "Reading order, where sections sit, tables, blocks and the layout structure stay faithful.",
            ),
            _cat(
                "legibility_noncrowding",
                "Legibility and Non-Crowding",
                0.20,
                "The content stays readable, not overly crowded, and reasonably spaced.",
            ),
            _cat(
                "key_visual_elements",
                "Key Visual Elements",
                0.15,
                "Icons, tables, charts, callouts or emphasis boxes that matter are still there.",
            ),
        ],
        "cap_profile": BALANCED,
        "extra_caps": [
            _cap(
                "material_key_text_error",
                2.5,
                "Key text or numbers that are materially wrong limit the score for this dataset.",
                any_of=[_below("text_information_fidelity")],
            )
        ],
    },
    "EEE-Bench": {
        "dataset": "EEE-Bench",
        "guidance": (
            "Judge the circuit: its topology, which components are which, labels, values, signs and the "
            "direction of currents and voltages. Be lenient about drawing style (a zig-zag or a box "
            "resistor) "
            "as long as the component is still clearly the same."
        ),
        "prompt_notes": [
            "A wrong direction, sign, label or connection matters more than how a symbol is drawn.",
            "Each component must remain the same kind of component, even if its shape is drawn a little "
            "differently.",
            "Small labels and values can be important; treat them so.",
        ],
        "categories": [
            _cat(
                "circuit_topology_connectivity",
                "Circuit Topology and Connectivity",
                0.35,
                "The wiring, how parts are placed relative to each other and the overall topology are right.",
            ),
            _cat(
                "component_identity_symbols",
                "Component Identity and Symbols",
                0.25,
                "Resistors, capacitors, sources and the other components are still the right components.",
            ),
            _cat(
                "labels_values_directions",
                "Labels, Values, and Directions",
                0.25,
                "Current directions, voltage labels, signs and numeric values are correct.",
            ),
            _cat(
                "readability_completeness",
                "Readability and Completeness",
                0.15,
                "The circuit reads clearly, is uncluttered, and no major visible content is missing.",
            ),
        ],
        "cap_profile": BALANCED,
        "extra_caps": [
            _cap(
                "circuit_semantic_error",
                2.5,
                "Wrong topology, labels, values or current/voltage directions limit the score for this "
                "dataset.",
                any_of=[_below("circuit_topology_connectivity"), _below("labels_values_directions")],
            )
        ],
    },
    "GEOQA_8K_R1V": _geometry(
        "GEOQA_8K_R1V",
        "Figures dominated by geometry: be strict about precise structure, labels, markers and numbers, and "
        "about whether every annotation clearly belongs to the right object.",
        [
            "A label that moved slightly is fine if what it labels is still unambiguous.",
            "Penalise labels whose target is ambiguous or wrong heavily.",
            "Precise geometry matters more than the style of the drawing.",
        ],
        "Shapes, their relations and the core geometric construction are precise and faithful.",
        "Lengths, angles, labels, given values and geometric markers are correct and readable.",
        "Each annotation sits where its edge, angle or point is unambiguous.",
    ),
    "Geoperception": _geometry(
        "Geoperception",
        "Figures dominated by geometry: be strict about structure, labels and markers, and about whether "
        "annotations clearly belong to the right object or angle.",
        [
            "Small label shifts are acceptable only while the target stays unambiguous.",
            "Penalise wrong or ambiguous geometric associations heavily.",
            "Faithful relations matter more than decorative style.",
        ],
        "Shapes, intersections and the core geometric relations are precise and faithful.",
        "Point labels, given values, numeric annotations and geometric markers are correct and readable.",
        "Annotations are positioned so that what they refer to is unambiguous.",
    ),
    "geometry3k": _geometry(
        "geometry3k",
        "Diagrams from geometry problems: be strict about shapes, faithful relations, markers and labels, "
        "and about whether annotations clearly belong to the right geometric object.",
        [
            "A diagram that is only roughly right must not score high.",
            "Angle or length text may move a little, but only while what it refers to stays obvious.",
            "Penalise missing or ambiguous markers heavily.",
        ],
        "Shapes, their relations and the core geometric construction are precise and faithful.",
        "Lengths, angles, point labels and geometric markers are correct and readable.",
        "Each annotation sits where its edge, angle or point is unambiguous.",
    ),
    "Graph-Algorithms": {
        "dataset": "Graph-Algorithms",
        "guidance": (
            "Be strict about the graph's topology, edge directions, ordering and labels. These diagrams can "
            "be dense, so be fair when the reference itself is messy, but never excuse a wrong graph."
        ),
        "prompt_notes": [
            "Exact topology and direction matter more than a different layout.",
            "Treat wrong ordering, weights or labels as important errors.",
            "When the reference graph is itself cluttered, do not over-penalise ambiguity it already has.",
        ],
        "categories": [
            _cat(
                "graph_structure_fidelity",
                "Graph Structure Fidelity",
                0.40,
                "The nodes, the edges and the overall topology are right.",
            ),
            _cat(
                "ordering_direction_semantics",
                "Ordering and Direction Semantics",
                0.25,
                "Edge directions, ordering and weights or edge meanings stay faithful.",
            ),
            _cat(
                "label_number_precision",
                "Label and Number Precision",
                0.20,
                "Node ids, edge labels and numeric annotations are correct and readable.",
            ),
            _cat(
                "readability_completeness",
                "Readability and Completeness",
                0.15,
                "The graph reads clearly and no major visible content is missing.",
            ),
        ],
        "cap_profile": STRICT,
        "extra_caps": [
            _cap(
                "graph_topology_or_direction_error",
                2.5,
                "A wrong topology, ordering or edge direction limits the score for this dataset.",
                any_of=[_below("graph_structure_fidelity"), _below("ordering_direction_semantics")],
            )
        ],
    },
    "GraphVQA-Swift": {
        "dataset": "GraphVQA-Swift",
        "guidance": (
            "Be strict about the graph's structure, precise labels and whether attributes stay attached to "
            "the "
            "right node or edge. Wrongly ordered labels or attributes on the wrong element are important "
            "errors."
        ),
        "prompt_notes": [
            "Topology and precise labels matter more than a different layout.",
            "Colours and other markers must stay on the graph elements they belong to.",
            "When the reference is visually messy, be fair about ambiguity it already has.",
        ],
        "categories": [
            _cat(
                "graph_structure_fidelity",
                "Graph Structure Fidelity",
                0.35,
                "Which nodes connect to which, and the overall topology, stay faithful.",
            ),
            _cat(
                "label_number_precision",
                "Label and Number Precision",
                0.30,
                "Labels, counts and numeric annotations are correct and attached to the right elements.",
            ),
            _cat(
                "attribute_mapping_fidelity",
                "Attribute Mapping Fidelity",
                0.20,
                "Colours and other attributes stay attached to the right nodes or edges.",
            ),
            _cat(
                "readability_completeness",
                "Readability and Completeness",
                0.15,
                "The graph reads clearly and no major visible content is missing.",
            ),
        ],
        "cap_profile": STRICT,
        "extra_caps": [
            _cap(
                "graph_label_or_attribute_error",
                2.5,
                "Wrongly ordered labels or attributes bound to the wrong element limit the score for this "
                "dataset.",
                any_of=[_below("label_number_precision"), _below("attribute_mapping_fidelity")],
            )
        ],
    },
    "matplotlib": {
        "dataset": "matplotlib",
        "guidance": (
            "Code-heavy recreation whose references come from real plotting code. Be strict about layout, "
            "plot elements, ticks, annotations and how faithfully it renders, but do not over-penalise "
            "styling "
            "from an unknown library when the figure itself is right."
        ),
        "prompt_notes": [
            "Only a genuinely close recreation should score high on this dataset.",
            "A wrong layout or missing major plot elements are important errors.",
            "Style differences from unknown libraries matter less than missing structure or annotations.",
        ],
        "categories": [
            _cat(
                "layout_composition_fidelity",
                "Layout and Composition Fidelity",
                0.30,
                "Axes, subplot arrangement, framing and composition match the reference.",
            ),
            _cat(
                "plot_element_fidelity",
                "Plot Element Fidelity",
                0.25,
                "Lines, bars, markers, patches and the other major plotted elements are faithful.",
            ),
            _cat(
                "text_ticks_annotations",
                "Text, Ticks, and Annotations",
                0.25,
                "Titles, labels, tick text, legends and annotations are present, correct and well placed.",
            ),
            _cat(
                "style_rendering_fidelity",
                "Style and Rendering Fidelity",
                0.20,
                "Line styles, fonts, colours and the overall look resemble the reference.",
            ),
        ],
        "cap_profile": STRICT,
        "extra_caps": [
            _cap(
                "major_plot_layout_failure",
                3.0,
                "A wrong layout or missing major plot elements limit the score for this dataset.",
                any_of=[_below("layout_composition_fidelity"), _below("plot_element_fidelity")],
            )
        ],
    },
    "OlympiadBench": {
        "dataset": "OlympiadBench",
        "guidance": (
            "Harder, often denser figures than basic geometry. Be strict about the structure, labels, given "
            "values and symbols the problem depends on, but fair when the reference itself is complex or "
            "noisy."
        ),
        "prompt_notes": [
            "Ask whether the recreated figure would support the same reasoning problem.",
            "A wrong core problem structure matters more than decorative style.",
            "These figures are hard: do not over-penalise small cosmetic differences that leave the meaning "
            "intact.",
        ],
        "categories": [
            _cat(
                "problem_structure_semantics",
                "Problem Structure and Semantics",
                0.35,
                "The core problem diagram and its essential relations stay faithful.",
            ),
            _cat(
                "labels_numbers_symbols",
                "Labels, Numbers, and Symbols",
                0.25,
                "Given values, labels and symbols are correct and readable.",
            ),
            _cat(
                "spatial_precision",
                "Spatial Precision",
                0.20,
                "Placement and construction are faithful enough to pose the same reasoning task.",
            ),
            _cat(
                "readability_completeness",
                "Readability and Completeness",
                0.20,
                "The diagram reads clearly, nothing is clipped, and it is complete enough to use.",
            ),
        ],
        "cap_profile": BALANCED,
        "extra_caps": [
            _cap(
                "wrong_core_problem_semantics",
                2.5,
                "Getting the core meaning of the problem wrong limits the score for this dataset.",
                any_of=[_below("problem_structure_semantics")],
            )
        ],
    },
    "Physics": {
        "dataset": "Physics",
        "guidance": (
            "Judge the physical setup: where objects are, vectors, labels and given values. Penalise a wrong "
            "force direction or a physically inconsistent placement heavily."
        ),
        "prompt_notes": [
            "Check vector directions, labels and whether the scene is consistent.",
            "Objects must sit where the setup puts them, for example on the slope rather than floating near "
            "it.",
            "Small differences of style matter less than getting the physics right.",
        ],
        "categories": [
            _cat(
                "physical_setup_fidelity",
                "Physical Setup Fidelity",
                0.35,
                "The scene and its essential physical setup stay faithful.",
            ),
            _cat(
                "vectors_labels_numbers",
                "Vectors, Labels, and Numbers",
                0.30,
                "Force arrows, directions, angles, labels and values are correct and readable.",
            ),
            _cat(
                "object_geometry_consistency",
                "Object Geometry Consistency",
                0.20,
                "Where objects are and their geometry stay physically consistent with the reference.",
            ),
            _cat(
                "readability_completeness",
                "Readability and Completeness",
                0.15,
                "The diagram reads clearly, nothing is clipped and no major visible content is missing.",
            ),
        ],
        "cap_profile": BALANCED,
        "extra_caps": [
            _cap(
                "vector_or_physical_consistency_error",
                2.5,
                "A wrong vector direction or a physically inconsistent placement limits the score for this "
                "dataset.",
                any_of=[_below("vectors_labels_numbers"), _below("object_geometry_consistency")],
            )
        ],
    },
    "spatialvlm_qa": {
        "dataset": "spatialvlm_qa",
        "guidance": (
            "A hard dataset of 3D scenes: judge which objects are present, their spatial relations, depth "
            "and "
            "how complete the scene is. Be fair about the difficulty, but never overlook wrong core spatial "
            "relations."
        ),
        "prompt_notes": [
            "The right objects drawn as a flat 2D picture belong in the low-to-middle range, not near the "
            "top.",
            "A wrong core spatial relation (in front of versus behind, say) is a major error.",
            "Depth, volume and 3D cues count for more here than on flat diagrams.",
        ],
        "categories": [
            _cat(
                "object_shape_identity_fidelity",
                "Object Shape and Identity Fidelity",
                0.25,
                "The right objects, with their basic shapes and counts, are present.",
            ),
            _cat(
                "spatial_relation_correctness",
                "Spatial Relation Correctness",
                0.35,
                "Relative positions (left or right, above or below, in front or behind) are correct.",
            ),
            _cat(
                "three_d_depth_rendering",
                "3D Depth Rendering",
                0.25,
                "Depth, volume, shadows and the other 3D cues are kept.",
            ),
            _cat(
                "color_scene_completeness",
                "Color and Scene Completeness",
                0.15,
                "The scene stays reasonably complete, with its main colours and elements.",
            ),
        ],
        "cap_profile": HARD,
        "extra_caps": [
            _cap(
                "flattened_two_d_scene",
                2.5,
                "The objects are there but the scene has been flattened into 2D, so it cannot score high.",
                all_of=[_at_least("object_shape_identity_fidelity", 3.0), _below("three_d_depth_rendering")],
            ),
            _cap(
                "wrong_core_spatial_relation",
                2.0,
                "Wrong core spatial relations limit the score for this dataset.",
                any_of=[_below("spatial_relation_correctness", 2.0)],
            ),
        ],
    },
}

GENERIC_RUBRIC: dict[str, Any] = {
    "dataset": "generic",
    "categories": [
        _cat(
            "core_information_fidelity",
            "Core Information Fidelity",
            0.25,
            "Important visible information — values, objects, relations, meaning — is preserved.",
        ),
        _cat(
            "structure_layout_fidelity",
            "Structure and Layout Fidelity",
            0.25,
            "The overall layout, geometry, chart or diagram structure, document structure and spatial "
            "arrangement are preserved.",
        ),
        _cat(
            "text_annotation_accuracy",
            "Text and Annotation Accuracy",
            0.25,
            "Readable labels, numbers, symbols, legends, annotations and text are preserved.",
        ),
        _cat(
            "visual_completeness_cleanliness",
            "Visual Completeness and Cleanliness",
            0.25,
            "The output is complete, not clipped, readable, not blank, and visually clean.",
        ),
    ],
    "cap_profile": None,  # the generic rubric applies no caps beyond a failed render
    "extra_caps": [],
}


def resolve_dataset(*names: str | None) -> str | None:
    """The rubric dataset for a sample, from its source dataset, sample id or folder name.

    As the original: an exact name, else the part before `:` (sample ids) or before `_test_`/`_train_`
    (question folders such as `ChartQA_test_000509_2ac3907c97d2`).
    """
    for name in names:
        cleaned = str(name or "").strip()
        if not cleaned:
            continue
        candidates = [cleaned, cleaned.split(":", 1)[0]]
        for marker in ("_test_", "_train_"):
            if marker in cleaned:
                candidates.append(cleaned.split(marker, 1)[0])
        for candidate in candidates:
            if candidate in DATASET_RUBRICS:
                return candidate
    return None
