"""The conventions the chart's dashboards share, over grafana-foundation-sdk's typed builders.

Every panel reads Prometheus through the `$datasource` variable, and each kind of panel looks the same
on every dashboard (legend, tooltip, line style, reduce options). Panels are written as `Slot`s (a
builder and its width and height) and laid out by the SDK left to right on Grafana's 24-column grid.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, common, prometheus, stat, table, text, timeseries
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm
from grafana_foundation_sdk.models import table as table_m
from grafana_foundation_sdk.models import text as tm

DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Selectors every run-scoped query filters on (all template variables are multi-value regexes).
RUN = 'namespace=~"$namespace", run=~"$run"'
JUDGESERVER = 'namespace=~"$namespace", judgeserver=~"$judgeserver"'
MODEL = 'model_name=~"$model"'
RATE = "[$__rate_interval]"

Query = tuple[str, str]  # (PromQL expression, legend)
PanelBuilder = timeseries.Panel | stat.Panel | bargauge.Panel | table.Panel | text.Panel
P = TypeVar("P", timeseries.Panel, stat.Panel, bargauge.Panel, table.Panel)


@dataclass
class Slot:
    """A panel and its size on the grid (w out of 24 columns, h in grid rows)."""

    panel: PanelBuilder
    w: int
    h: int


@dataclass
class Row:
    title: str
    slots: list[Slot]


def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False, as_table: bool = False):
    q = (
        prometheus.Dataquery()
        .datasource(DS)
        .ref_id(ref)
        .expr(expr)
        .legend_format(legend or "__auto")
        .editor_mode(pm.QueryEditorMode.CODE)
    )
    q = q.instant() if instant else q.range()
    if as_table:
        q = q.format(pm.PromQueryFormat.TABLE)
    return q


def queries(*specs: Query) -> list[prometheus.Dataquery]:
    """(expr, legend) pairs, as range queries with refIds A, B, C, ..."""
    return [query(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(specs)]


def quantiles(metric: str, by: str, qs: tuple[float, ...], legend: str, selector: str) -> list[Query]:
    """histogram_quantile of `metric`_bucket for each q, legend `p50 <legend>` and so on."""
    return [
        (
            f"histogram_quantile({q}, sum by (le{', ' + by if by else ''}) "
            f"(rate({metric}_bucket{{{selector}}}{RATE})))",
            f"p{round(q * 100)}{' ' + legend if legend else ''}",
        )
        for q in qs
    ]


def _common(panel: P, title: str, description: str, targets, unit: str) -> P:
    panel = panel.title(title).description(description).datasource(DS).unit(unit)
    panel = panel.color_scheme(board.FieldColor().mode(dm.FieldColorModeId.PALETTE_CLASSIC))
    panel = panel.thresholds(_steps(("green", None)))
    for target in targets:
        panel = panel.with_target(target)
    return panel.mappings([])


def _steps(*steps: tuple[str, float | None]) -> board.ThresholdsConfig:
    return (
        board.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=value, color=color) for color, value in steps])
    )


def _reduce() -> common.ReduceDataOptions:
    return common.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def graph(
    title: str,
    description: str,
    targets,
    unit: str = "short",
    stack: bool = False,
    max_: float | None = None,
) -> timeseries.Panel:
    panel = (
        _common(timeseries.Panel(), title, description, targets, unit)
        .draw_style(cm.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(10)
        .show_points(cm.VisibilityMode.NEVER)
        .span_nulls(False)
        .stacking(
            common.StackingConfig().mode(cm.StackingMode.NORMAL if stack else cm.StackingMode.NONE).group("A")
        )
        .legend(
            common.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs([])
        )
        .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    )
    if max_ is not None:
        panel = panel.min(0).max(max_)
    return panel


def single(
    title: str,
    description: str,
    targets,
    unit: str = "short",
    decimals: int | None = None,
    mappings: list[dm.ValueMap] | None = None,
    steps: tuple[tuple[str, float | None], ...] = (),
) -> stat.Panel:
    panel = (
        _common(stat.Panel(), title, description, targets, unit)
        .reduce_options(_reduce())
        .color_mode(cm.BigValueColorMode.VALUE)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .justify_mode(cm.BigValueJustifyMode.AUTO)
        .text_mode(cm.BigValueTextMode.AUTO)
        .orientation(cm.VizOrientation.AUTO)
        .wide_layout(True)
        .show_percent_change(False)
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    if mappings:
        panel = panel.mappings(list(mappings))
    if steps:
        panel = panel.thresholds(_steps(*steps))
        panel = panel.color_scheme(board.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
    return panel


def bars(title: str, description: str, targets, unit: str = "percentunit", max_: float | None = 1.0):
    panel = (
        _common(bargauge.Panel(), title, description, targets, unit)
        .reduce_options(_reduce())
        .orientation(cm.VizOrientation.HORIZONTAL)
        .display_mode(cm.BarGaugeDisplayMode.GRADIENT)
        .show_unfilled(True)
        .min_viz_height(16)
        .min_viz_width(8)
        .value_mode(cm.BarGaugeValueMode.COLOR)
        .name_placement(cm.BarGaugeNamePlacement.AUTO)
        .sizing(cm.BarGaugeSizing.AUTO)
    )
    if max_ is not None:
        panel = panel.min(0).max(max_)
    return panel


def grid(
    title: str,
    description: str,
    targets,
    hide: tuple[str, ...] = ("Time",),
    rename: dict[str, str] | None = None,
    merge: bool = False,
) -> table.Panel:
    """A table. `merge` joins several instant queries into one row per label set (a column each)."""
    panel = (
        _common(table.Panel(), title, description, targets, "short")
        .show_header(True)
        .cell_height(cm.TableCellHeight.SM)
    )
    if merge:
        panel = panel.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
    organize: dict[str, object] = {"excludeByName": dict.fromkeys(hide, True)}
    if rename:
        organize["renameByName"] = rename
    return panel.with_transformation(dm.DataTransformerConfig(id_val="organize", options=organize))


def note(title: str, content: str) -> text.Panel:
    return text.Panel().title(title).mode(tm.TextMode.MARKDOWN).content(content)


def mapping(values: dict[str, tuple[str, str]]) -> dm.ValueMap:
    """Value -> (text, colour)."""
    return dm.ValueMap(
        options={
            value: dm.ValueMappingResult(text=label, color=colour, index=i)
            for i, (value, (label, colour)) in enumerate(values.items())
        }
    )


def datasource_variable() -> board.DatasourceVariable:
    return (
        board.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .hide(dm.VariableHide.DONT_HIDE)
        .regex("")
    )


def query_variable(name: str, label: str, expr: str) -> board.QueryVariable:
    return (
        board.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(expr)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)  # runs come and go
        .include_all(True)
        .multi(True)
        .all_value(".*")
        .current(dm.VariableOption(text="All", value="$__all", selected=True))
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .hide(dm.VariableHide.DONT_HIDE)
        .regex("")
    )


def panel_id(title: str, taken: set[int]) -> int:
    """An id from the panel's title, so adding a panel leaves the others' ids (and their links,
    `?viewPanel=ID`) as they were. Titles are unique within a dashboard."""
    pid = zlib.crc32(title.encode()) % 1_000_000 + 1
    if pid in taken:
        raise ValueError(f"panel {title!r}: its id {pid} is taken (a duplicate title?)")
    taken.add(pid)
    return pid


def dashboard(
    uid: str,
    title: str,
    description: str,
    rows: list[Row],
    variables: list[Builder[dm.VariableModel]],
) -> dm.Dashboard:
    """The dashboard, with panels placed row by row and ids derived from titles."""
    built = (
        board.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["proctor"])
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .fiscal_year_start_month(0)
        .live_now(False)
        .link(
            board.DashboardLink("Proctor dashboards")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["proctor"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
            .icon("external link")
            .target_blank(False)
            .tooltip("")
            .url("")
        )
        .variables(variables)
    )
    taken: set[int] = set()
    for row in rows:
        if sum(slot.w for slot in row.slots) % 24:
            raise ValueError(f"row {row.title!r}: widths do not fill whole lines of 24 columns")
        built = built.with_row(board.Row(row.title).id(panel_id(f"row {row.title}", taken)))
        for slot in row.slots:
            built = built.with_panel(slot.panel.height(slot.h).span(slot.w))
    result = built.build()
    for panel in result.panels or []:
        if isinstance(panel, dm.Panel):
            panel.id_val = panel_id(panel.title or "", taken)
    return _without_stale_defaults(result)


def _without_stale_defaults(result: dm.Dashboard) -> dm.Dashboard:
    """Drop two defaults the SDK (Grafana 11.6's schema) writes that current Grafana's schema does not
    define (tests/unit/test_chart_dashboards.py checks against @grafana/schema): the interval settings
    `auto`, `auto_min`, `auto_count` on every variable (they mean something only on interval variables,
    which these dashboards have none of) and the table's hidden `footer` (gone from the table panel)."""
    for variable in (result.templating.list_val if result.templating else None) or []:
        if variable.type_val != dm.VariableType.INTERVAL:
            variable.auto = variable.auto_min = variable.auto_count = None
    for panel in result.panels or []:
        if (
            isinstance(panel, dm.Panel)
            and panel.type_val == "table"
            and isinstance(panel.options, table_m.Options)
        ):
            panel.options.footer = None
    return result
