"""The kind registry is the one place a kind is named: no module outside `budai_operator.kinds`
(and each kind's own pure decision, `reconcile/<kind>.py`) compares a kind with a concrete name
or keeps a table keyed by kind names; and everything per kind (handlers, CRDs, the admission
policy, the chart's RBAC lists, the Argo CD health scripts) follows the registry."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from budai_operator import crdgen
from budai_operator.kinds.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "budai_operator"
CHART = ROOT / "charts" / "bud-operator"
KIND_NAMES = {*(a.kind for a in REGISTRY), *REGISTRY.connections}


def _kind_modules() -> set[Path]:
    """kinds/* and, for each kind module there, its pure decision reconcile/<same name>.py."""
    kinds = PACKAGE / "kinds"
    own = {p for p in kinds.rglob("*.py")}
    decisions = {PACKAGE / "reconcile" / p.name for p in own}
    return own | {p for p in decisions if p.exists()}


def _kind_constants(trees: list[ast.Module]) -> set[str]:
    """Module-level names bound to a kind name ("BudModel") or to something that carries one
    (a KindDef `BUD_MODEL`, an adapter `MODEL`): comparing with `MODEL.kind` is naming it too."""
    names: set[str] = set()
    for tree in trees:
        for node in tree.body:
            if not isinstance(node, ast.Assign | ast.AnnAssign):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            named = isinstance(value, ast.Constant) and value.value in KIND_NAMES
            carries = (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id.endswith(("Kind", "KindDef"))
            )
            if named or carries:
                names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _root(node: ast.expr) -> ast.expr:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node


def _names_a_kind(node: ast.expr, constants: set[str]) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in KIND_NAMES
    root = _root(node)
    return isinstance(root, ast.Name) and root.id in constants


def _operand_names_a_kind(node: ast.expr, constants: set[str]) -> bool:
    # `kind in ("BudModel", ...)` names each of them.
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_names_a_kind(e, constants) for e in node.elts)
    return _names_a_kind(node, constants)


def kind_branches(tree: ast.Module, constants: set[str]) -> list[int]:
    """Lines comparing with, matching on, or tabling by a concrete kind name."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_operand_names_a_kind(o, constants) for o in operands):
                lines.append(node.lineno)
        elif (isinstance(node, ast.MatchValue) and _names_a_kind(node.value, constants)) or (
            isinstance(node, ast.Dict)
            and any(k is not None and _names_a_kind(k, constants) for k in node.keys)
        ):
            lines.append(node.lineno)
    return lines


def _trees() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))}


def test_the_detector_sees_each_way_of_naming_a_kind() -> None:
    # If this fails, the test below would pass whatever the code does.
    snippet = ast.parse(
        "FOO = 'BudModel'\n"
        "if st.kind == 'BudDeployment': pass\n"
        "if kind in ('BudPipeline', 'x'): pass\n"
        "if kind != FOO: pass\n"
        "if kind == MODEL.kind: pass\n"
        "PLURALS = {'BudExecution': 'budexecutions'}\n"
        "match kind:\n    case 'BudConnection': pass\n"
        "if kind == other: pass\n"
    )
    found = kind_branches(snippet, _kind_constants([snippet]) | {"MODEL"})
    assert found == [2, 3, 4, 5, 6, 8]


def test_no_kind_is_named_outside_the_kind_modules() -> None:
    trees = _trees()
    constants = _kind_constants(list(trees.values()))
    skip = _kind_modules()
    found = [
        f"{path.relative_to(PACKAGE)}:{line}"
        for path, tree in trees.items()
        if path not in skip
        for line in kind_branches(tree, constants)
    ]
    assert found == [], "per-kind behaviour belongs in the kind's module in budai_operator/kinds"


def test_the_registry_is_the_list_of_kinds() -> None:
    assert [a.kind for a in REGISTRY] == [
        "BudModel",
        "BudDeployment",
        "BudPipeline",
        "BudExecution",
    ]
    assert list(REGISTRY.connections) == ["BudConnection", "ClusterBudConnection"]
    crds = crdgen.all_crds()
    for definition in REGISTRY.definitions():
        assert f"{definition.crd.plural}.bud.studio.yaml" in crds
    policy = crdgen.finalizer_policy()[0]
    resources = policy["spec"]["matchConstraints"]["resourceRules"][0]["resources"]
    assert resources == sorted(a.plural for a in REGISTRY)


def test_the_chart_lists_every_kind() -> None:
    """What the chart cannot include from generated templates is checked against the registry."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    listed = yaml.safe_load(chart["annotations"]["artifacthub.io/crds"])
    assert [c["kind"] for c in listed] == [a.kind for a in REGISTRY]
    assert [c["name"] for c in listed] == [f"{a.plural}.bud.studio" for a in REGISTRY]
    kinds = (CHART / "templates" / "_kinds.tpl").read_text(encoding="utf-8")
    for adapter in REGISTRY:
        assert f"{adapter.plural}/status" in kinds
