"""awx/configure.yml: what the AWX job templates ask for must be what the
playbooks take.

No AWX server is reachable here, so the survey specs are read from the
playbook and checked against AWX's survey rules and against the variables
that submit_job.yml and teardown.yml validate. Renaming an extra var in a
playbook, or changing its default or its bounds, breaks these tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jinja2
import jinja2.nativetypes
import jinja2.sandbox
import jinja2.meta
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
CONFIGURE = REPO / "awx" / "configure.yml"
AWX_VARS = yaml.safe_load((REPO / "awx" / "vars.yml").read_text())
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
# Names a playbook may use without anyone passing them.
MAGIC = {
    "ansible_check_mode", "ansible_inventory_sources", "ansible_config_file", "groups", "hostvars", "inventory_hostname",
    "item", "lookup", "now", "omit", "query", "q", "gpuops_root", "gpuops_state_dir", "gpuops_cloud",
}


def render(value, context: dict):
    """Render a "{{ ... }}" value of configure.yml the way Ansible would (native types)."""
    if isinstance(value, str) and "{{" in value:
        rendered = jinja2.Environment().from_string(value).render(**context)
        return int(rendered) if rendered.isdigit() else rendered
    return value


@pytest.fixture(scope="module")
def play() -> dict:
    plays = yaml.safe_load(CONFIGURE.read_text())
    assert len(plays) == 1
    return plays[0]


@pytest.fixture(scope="module")
def templates(play) -> dict[str, dict]:
    """The job templates by playbook, their loop items with the survey resolved."""
    task = next(t for t in play["tasks"] if "awx.awx.job_template" in t)
    result = {}
    for item in task["loop"]:
        survey = item["survey"]
        if isinstance(survey, str):
            survey = play["vars"][re.fullmatch(r"\{\{ (\w+) \}\}", survey).group(1)]
        spec = [{k: render(v, AWX_VARS) for k, v in question.items()} for question in survey.get("spec", [])]
        result[item["playbook"]] = {**item, "survey": {**survey, "spec": spec} if survey else {}}
    return result


class _Anything(dict):
    """Filters and tests of Ansible that plain Jinja lacks: any name passes the compiler's check."""

    def __contains__(self, name: object) -> bool:
        return True

    def get(self, name, default=None):
        return super().get(name, default) or (lambda *args, **kwargs: None)


_PARSER = jinja2.Environment()
_PARSER.filters = _Anything(_PARSER.filters)
_PARSER.tests = _Anything(_PARSER.tests)


def variables(text: str) -> set[str]:
    """Every variable a Jinja expression or template string reads."""
    source = text if "{{" in text or "{%" in text else "{{ " + text + " }}"
    return jinja2.meta.find_undeclared_variables(_PARSER.parse(source))


def walk(node):
    """Every string in a YAML document, with the key it sits under."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                yield key, value
            else:
                yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from (("", value),) if isinstance(value, str) else walk(value)


class PlaybookInputs:
    """The extra vars a playbook takes, read from its own text."""

    def __init__(self, path: Path) -> None:
        self.text = path.read_text()
        # The play that checks the request: the validation the survey must agree with.
        self.validation = next((chunk for chunk in re.split(r"\n- (?=name:)", self.text)
                                if re.match(r"name: Check the (job )?request\n", chunk)), "")
        plays = yaml.safe_load(self.text)
        defined: set[str] = set()
        used: set[str] = set()
        for play in plays:
            defined |= set(play.get("vars", {}))
            for task in play.get("tasks", []):
                defined |= {task["register"]} if "register" in task else set()
                defined |= set(task.get("vars", {}))
                defined |= set(task.get("ansible.builtin.set_fact", {}))
            for key, value in walk(play):
                expression = key in ("that", "when", "failed_when", "changed_when", "") and "{{" not in value
                if "{{" in value or (expression and key != ""):
                    used |= variables(value)
                elif key == "" and re.search(r"\bis (defined|match)\b|\|", value):
                    used |= variables(value)  # an item of an assert's `that` list
        self.inputs = used - defined - MAGIC

    def default(self, name: str) -> str:
        """The literal default the validation uses for `name`."""
        found = set(re.findall(rf"(?<![.\w]){name} \| default\(([^()]*)\)", self.validation))
        assert len(found) == 1, f"{name}: defaults {found}"
        return found.pop().strip("'\"")

    def accepted(self, name: str) -> list[str]:
        """The literal list `(name | default(..) | string | lower) in [...]` accepts."""
        match = re.search(rf"\({name} \| default\([^)]*\) \| string \| lower\) in \[([^\]]*)\]", self.validation)
        assert match, f"no list of accepted values for {name}"
        return re.findall(r"'([^']*)'", match.group(1))


@pytest.fixture(scope="module")
def submit() -> PlaybookInputs:
    return PlaybookInputs(REPO / "submit_job.yml")


def check_survey_rules(survey: dict) -> None:
    """What AWX's API refuses in a survey spec (awx/api/views: survey spec validation)."""
    assert survey["name"] and isinstance(survey["description"], str)
    names = [q["variable"] for q in survey["spec"]]
    assert len(names) == len(set(names)), f"duplicate variables {names}"
    for q in survey["spec"]:
        where = q["variable"]
        assert q["question_name"] and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", where)
        assert q["type"] in SURVEY_TYPES, where
        assert isinstance(q["required"], bool), where
        if q["type"] in ("integer", "text", "textarea"):
            assert isinstance(q["min"], int) and isinstance(q["max"], int) and q["min"] <= q["max"], where
        if q["type"] == "integer" and "default" in q:
            assert isinstance(q["default"], int) and q["min"] <= q["default"] <= q["max"], where
        if q["type"] == "multiplechoice":
            assert isinstance(q["choices"], list) and all(isinstance(c, str) for c in q["choices"]), where
            assert q["default"] in q["choices"], where


def test_submit_survey_follows_awx_rules(templates):
    check_survey_rules(templates["submit_job.yml"]["survey"])


def job_request():
    """submit_job.yml's check of a job request: the action plugin gpuops.platform.job_request."""
    path = REPO / "collections/ansible_collections/gpuops/platform/plugins/action/job_request.py"
    # It imports the collection's module_utils as ansible_collections.gpuops.platform...
    if str(REPO / "collections") not in sys.path:
        sys.path.insert(0, str(REPO / "collections"))
    spec = importlib.util.spec_from_file_location("gpuops_job_request", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_submit_job_checks_the_request_with_the_job_request_module(submit):
    assert "gpuops.platform.job_request:" in submit.validation


def test_submit_survey_asks_only_for_what_submit_job_takes(templates, submit):
    asked = {q["variable"] for q in templates["submit_job.yml"]["survey"]["spec"]}
    assert {"script", "gpus_per_node", "nodes", "partition", "wait", "job_name"} <= asked
    unknown = asked - submit.inputs - set(job_request().INPUTS)
    assert not unknown, (f"the survey sets {sorted(unknown)}, which submit_job.yml never reads (it reads "
                         f"{sorted(submit.inputs | set(job_request().INPUTS))})")


def test_submit_survey_script_is_a_required_textarea_as_large_as_submit_job_allows(templates, submit):
    script = next(q for q in templates["submit_job.yml"]["survey"]["spec"] if q["variable"] == "script")
    assert script["type"] == "textarea" and script["required"] is True
    assert "default" not in script or not script["default"]
    assert script["max"] == int(submit.default("submit_max_script_bytes"))


def test_submit_survey_numbers_match_submit_job_validation(templates):
    questions = {q["variable"]: q for q in templates["submit_job.yml"]["survey"]["spec"]}
    counts = job_request().COUNTS
    assert {"gpus_per_node", "nodes"} <= set(counts)
    for name in set(counts) & set(questions):
        question = questions[name]
        default, lowest = counts[name]
        assert question["type"] == "integer", name
        assert question["default"] == default, name
        # The module refuses anything below its bound; the survey must not offer it.
        assert question["min"] >= lowest, name
    for name in set(questions) - set(counts):
        assert questions[name]["type"] != "integer", f"{name} is not checked as a number by job_request"


def test_submit_survey_asks_for_gpus_per_node_and_never_for_gpus(templates):
    """`gpus` meant GPUs for the whole job here and per node in the web app: job_request refuses it by name."""
    module = job_request()
    questions = {q["variable"]: q for q in templates["submit_job.yml"]["survey"]["spec"]}
    assert "gpus" not in questions and "gpus" in module.RENAMED
    gpus = questions["gpus_per_node"]
    assert "each of the job's nodes" in gpus["question_description"] and "--gpus-per-node" in gpus["question_description"]
    order = list(questions)
    assert order.index("nodes") < order.index("gpus_per_node"), "ask for the nodes first: GPUs are per node"
    # What the survey sends is what job_request takes: nodes=2, gpus_per_node=2 is 4 GPUs in all.
    request = module.check({"script": "#!/bin/sh\ntrue\n", "nodes": 2, "gpus_per_node": 2}, [2, 2], 1024, [], "/", True)
    assert request["gpus_total"] == 4
    with pytest.raises(module.Refusal, match="^gpus is not an input of a job request.*gpus_per_node=N"):
        module.check({"script": "#!/bin/sh\ntrue\n", "gpus": 2}, [2, 2], 1024, [], "/", True)


def test_submit_survey_numbers_match_the_web_form_and_the_api(templates):
    """The survey offers the bounds the web form offers (app/web/src/lib/jobRequestLimits.json, which
    tests/unit/api/test_api_job_gpus.py checks against the API's JobRequest)."""
    web = json.loads((REPO / "app/web/src/lib/jobRequestLimits.json").read_text())
    questions = {q["variable"]: q for q in templates["submit_job.yml"]["survey"]["spec"]}
    for name in ("nodes", "gpus_per_node"):
        question = questions[name]
        assert {"min": question["min"], "max": question["max"], "default": question["default"]} == web[name], name


def test_submit_survey_wait_choices_are_what_submit_job_accepts(templates):
    module = job_request()
    wait = next(q for q in templates["submit_job.yml"]["survey"]["spec"] if q["variable"] == "wait")
    assert wait["type"] == "multiplechoice"
    assert set(wait["choices"]) == {"true", "false"} and set(wait["choices"]) <= set(module.TRUE + module.FALSE)
    assert wait["default"] == str(module.FLAGS["wait"]).lower()


def test_submit_survey_optional_answers_have_no_default(templates):
    # An optional question with a default always sends it: the playbook's own default would never apply.
    for question in templates["submit_job.yml"]["survey"]["spec"]:
        if not question["required"]:
            assert "default" not in question, question["variable"]


def test_teardown_survey_matches_teardown_yml(templates):
    teardown = PlaybookInputs(REPO / "teardown.yml")
    survey = templates["teardown.yml"]["survey"]
    check_survey_rules(survey)
    assert [question["variable"] for question in survey["spec"]] == ["keep_stack", "force"]
    for question in survey["spec"]:
        name = question["variable"]
        assert name in teardown.inputs
        assert set(question["choices"]) <= set(teardown.accepted(name))
        assert question["default"] == teardown.default(name)


def test_job_templates_run_the_root_playbooks(templates):
    assert set(templates) == {"site.yml", "submit_job.yml", "teardown.yml"}
    for playbook in templates:
        assert (REPO / playbook).is_file(), f"{playbook} is missing from the repository root"
    assert templates["site.yml"]["survey"] == {}


def _with_awx_vars(**overrides) -> dict:
    """awx/vars.yml as Ansible resolves it, with overrides (its own templates rendered, one level deep)."""
    context = {**AWX_VARS, **overrides}
    return {name: render(value, context) if name not in overrides else value for name, value in context.items()}


def _render_job_vars(play, context: dict) -> dict:
    environment = jinja2.nativetypes.NativeEnvironment()
    environment.filters["combine"] = lambda first, second: {**first, **second}
    return environment.from_string(play["vars"]["_gpuops_awx_job_vars"]).render(**context)


def test_site_template_skips_the_service_plane_stages_only_without_a_service_plane_host(templates):
    stages = {tag for play in yaml.safe_load((REPO / "site.yml").read_text()) for tag in play.get("tags", [])}
    skip = render(templates["site.yml"]["skip_tags"], _with_awx_vars())
    assert set(skip.split(",")) == {"stack", "slurm", "tunnel", "smoke"} <= stages - {"always"}, skip
    # With a host that persists, the site template runs every stage.
    assert render(templates["site.yml"]["skip_tags"], _with_awx_vars(gpuops_awx_service_plane_host="sp.example.com")) == ""
    assert all(render(templates[p]["skip_tags"], AWX_VARS) == "" for p in ("submit_job.yml", "teardown.yml"))


def test_job_template_extra_vars_are_variables_the_playbooks_know(play):
    common = yaml.safe_load((REPO / "inventories/common.yml").read_text())
    defaults = yaml.safe_load((REPO / "collections/ansible_collections/gpuops/platform/roles/provision/defaults/main.yml").read_text())
    assert "provision_terraform_binary" in defaults
    without = _render_job_vars(play, _with_awx_vars())
    assert without == {"gpuops_state_dir": AWX_VARS["gpuops_awx_state_dir"],
                       "provision_terraform_binary": AWX_VARS["gpuops_awx_terraform_binary"]}
    assert "gpuops_state_dir" in common
    with_host = _render_job_vars(play, _with_awx_vars(gpuops_awx_service_plane_host="sp.example.com",
                                                     gpuops_awx_service_plane_port=2222))
    assert with_host["gpuops_service_plane_host"] == "sp.example.com"
    assert with_host["gpuops_service_plane_port"] == 2222
    service_plane = {"gpuops_service_plane_host", "gpuops_service_plane_user", "gpuops_service_plane_port",
                     "gpuops_service_plane_dir"}
    assert set(with_host) - set(without) == service_plane
    # Each is a variable of the inventories (common.yml), which the service plane's host reads.
    assert service_plane <= set(common)


def test_runpod_credential_type_injects_what_the_playbooks_read(play):
    task = next(t for t in play["tasks"] if "awx.awx.credential_type" in t)["awx.awx.credential_type"]
    assert task["kind"] == "cloud"
    (field,) = task["inputs"]["fields"]
    assert field["id"] == "api_key" and field["secret"] is True and task["inputs"]["required"] == ["api_key"]
    # The template must reach AWX unrendered: AWX fills in the credential's input.
    rendered = jinja2.Environment().from_string(task["injectors"]["env"]["RUNPOD_API_KEY"]).render()
    assert rendered == "{{ api_key }}"
    preflight = (REPO / "collections/ansible_collections/gpuops/platform/roles/provision/tasks/preflight.yml").read_text()
    assert "lookup('ansible.builtin.env', 'RUNPOD_API_KEY')" in preflight


def test_read_only_credential_gives_the_api_its_key_as_a_file(play, templates, tmp_path):
    """AWX renders the injectors: the key into a file of the job, its path as app_runpod_read_key_file."""
    awx_vars = yaml.safe_load((REPO / "awx/vars.yml").read_text())
    task = next(t["awx.awx.credential_type"] for t in play["tasks"]
                if "awx.awx.credential_type" in t and "read_credential_type" in t["awx.awx.credential_type"]["name"])
    assert task["kind"] == "cloud"
    (field,) = task["inputs"]["fields"]
    assert field["id"] == "read_key" and field["secret"] is True and task["inputs"]["required"] == ["read_key"]
    injectors = task["injectors"]
    assert set(injectors) == {"file", "extra_vars"}, "the key must not reach the job's environment"
    # What AWX does with them (awx/main/models/credential: a Jinja sandbox over the inputs and tower.filename).
    env = jinja2.sandbox.ImmutableSandboxedEnvironment()
    key_file = tmp_path / "read_key"
    key_file.write_text(env.from_string(env.from_string(injectors["file"]["template.read_key"]).render()).render(
        read_key="rpa_READONLY"))
    extra_vars = {name: env.from_string(env.from_string(value).render()).render(
        tower={"filename": {"read_key": str(key_file)}}) for name, value in injectors["extra_vars"].items()}
    assert extra_vars == {"app_runpod_read_key_file": str(key_file)}
    assert key_file.read_text() == "rpa_READONLY"
    spec = yaml.safe_load((REPO / "collections/ansible_collections/gpuops/platform/roles/app/meta/argument_specs.yml").read_text())
    assert "app_runpod_read_key_file" in spec["argument_specs"]["main"]["options"]
    # Only the site template (the one that deploys the stack, with the API) gets it.
    assert "_gpuops_awx_read_creds" in templates["site.yml"]["credentials"]
    assert all("_gpuops_awx_read_creds" not in t["credentials"] for name, t in templates.items() if name != "site.yml")
    assert awx_vars["gpuops_awx_runpod_read_api_key"] == ""


def test_tasks_that_handle_secrets_never_log(play):
    for task in play["tasks"]:
        text = yaml.safe_dump(task)
        if any(secret in text for secret in ("gpuops_awx_runpod_api_key", "gpuops_awx_ssh_private_key",
                                             "gpuops_awx_runpod_read_api_key")):
            assert task.get("no_log") is True, task["name"]


@pytest.mark.parametrize("cloud", ["runpod", "local"])
def test_awx_inventory_files_follow_the_checkout_ones(cloud):
    """awx/inventories/<cloud>/runpod.yml = inventories/<cloud>/runpod.yml with the EE's paths."""
    awx = yaml.safe_load((REPO / f"awx/inventories/{cloud}/runpod.yml").read_text())
    checkout = yaml.safe_load((REPO / f"inventories/{cloud}/runpod.yml").read_text())
    state = AWX_VARS["gpuops_awx_state_dir"]
    assert awx["terraform_binary"] == AWX_VARS["gpuops_awx_terraform_binary"]
    for option in ("state_file", "private_key_file", "api_key_file"):
        if option in checkout:
            assert awx[option] == checkout[option].replace("../../.gpuops", state), option
    assert (REPO / "awx/inventories" / cloud / awx["project_path"]).resolve() == (REPO / "terraform/runpod").resolve()
    paths = {"state_file", "private_key_file", "api_key_file", "terraform_binary", "project_path"}
    assert {k: v for k, v in awx.items() if k not in paths} == {k: v for k, v in checkout.items() if k not in paths}
    for name in ("common.yml", "cloud.yml"):
        assert (REPO / f"awx/inventories/{cloud}/group_vars/all/{name}").resolve().is_file()


def test_inventory_source_paths_exist(play):
    assert (REPO / AWX_VARS["gpuops_awx_inventory_source_path"]).is_file()
    assert "'awx/inventories/local/runpod.yml'" in yaml.safe_dump(play["tasks"])
    assert (REPO / "awx/inventories/local/runpod.yml").is_file()


# -- the playbook itself --------------------------------------------------------


def run_configure(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLLER_", "TOWER_"))}
    environ.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", **(env or {})})
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), str(CONFIGURE), *args], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=300, check=False)


def test_configure_passes_syntax_check():
    result = run_configure("--syntax-check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_configure_needs_the_scm_url():
    result = run_configure()
    assert result.returncode != 0
    assert "Say where AWX clones gpuops from: -e gpuops_awx_scm_url=" in result.stdout
    assert "Nothing was changed" in result.stdout


def test_configure_needs_a_controller():
    result = run_configure("-e", "gpuops_awx_scm_url=https://git.example.com/ops/gpuops.git")
    assert result.returncode != 0
    assert "Set CONTROLLER_HOST (e.g. https://awx.example.com) and CONTROLLER_OAUTH_TOKEN" in result.stdout
