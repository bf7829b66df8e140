"""Shared fixtures: a per-session dataset cache and the real CIFAR-10 copy when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tiny tests run fastest on one thread (and never oversubscribe a shared machine);
# tests on the real dataset ask for every core with the `all_cores` fixture.
torch.set_num_threads(1)


@pytest.fixture
def all_cores():
    """Use every core for the duration of a test on real data."""
    torch.set_num_threads(os.cpu_count() or 1)
    yield
    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Tests never touch the user's cache (~/.cache/nasmix)."""
    old = os.environ.get("NASMIX_CACHE")
    os.environ["NASMIX_CACHE"] = str(tmp_path_factory.mktemp("nasmix-cache"))
    yield
    if old is None:
        os.environ.pop("NASMIX_CACHE", None)
    else:
        os.environ["NASMIX_CACHE"] = old


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance shared by every Ray test of the session: starting one (and
    its worker processes, which import torch) costs seconds, so it is done once."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def cifar_path() -> Path:
    """The real CIFAR-10 copy named by $NASMIX_DATA; the test is skipped without it."""
    value = os.environ.get("NASMIX_DATA")
    if not value or not Path(value).exists():
        pytest.skip("set NASMIX_DATA to the CIFAR-10 copy (e.g. ../shared/datasets/cifar10-jpeg.zip) to run")
    return Path(value)


@pytest.fixture(scope="session")
def cifar(cifar_path):
    """The real CIFAR-10 arrays (decoded once per session)."""
    from nasmix.data import load_dataset

    return load_dataset("cifar10", cifar_path)


# The quick lane (`pytest -m "not slow"`) stays under two minutes: besides the tests marked
# `slow` where they are defined, these took over 1 s each in that lane (2-core AMD EPYC,
# quiet, 2026-12-01; 46 tests, 96 s of its 190 s). They still run in the full suite.
LANE_SLOW = (
    "tests/estimators/test_estimator_predictor.py::test_first_n_trained_then_predicted[mlp]",
    "tests/report/test_report_browser.py::test_report_opens_offline_and_no_figure_overlaps",
    "tests/report/test_report_escaping.py::test_markdown_carries_store_text_as_text",
    "tests/report/test_report_render.py::test_nine_cells_report",
    "tests/serve/test_serve_refusals.py::test_the_cli_exits_2_in_a_real_process",
    "tests/spaces/test_hierarchical.py::test_default_is_naslibs_network",
    "tests/strategies/test_accel.py::test_searches_that_leave_ops_without_gradients_run_the_cuda_configuration[fewshot-cfg2]",
    "tests/strategies/test_oneshot.py::test_same_seed_same_search[darts]",
    "tests/strategies/test_oneshot_fidelity.py::test_drnas_progressive_widens_in_the_darts_space",
    "tests/strategies/test_oneshot_finds.py::test_search_puts_its_weight_on_the_rewarded_op[darts-0]",
    "tests/strategies/test_oneshot_finds.py::test_search_puts_its_weight_on_the_rewarded_op[darts-1]",
    "tests/strategies/test_oneshot_finds.py::test_search_puts_its_weight_on_the_rewarded_op[darts-2]",
    "tests/strategies/test_oneshot_finds.py::test_search_puts_its_weight_on_the_rewarded_op[drnas-0]",
    "tests/strategies/test_oneshot_finds.py::test_search_puts_its_weight_on_the_rewarded_op[drnas-1]",
    "tests/strategies/test_oneshot_finds.py::test_search_puts_its_weight_on_the_rewarded_op[drnas-2]",
    "tests/strategies/test_oneshot_finds.py::test_pcdarts_puts_its_weight_on_the_rewarded_op_for_most_seeds",
    "tests/strategies/test_pinned_search.py::test_search_matches_the_pinned_run[darts-darts]",
    "tests/strategies/test_pinned_search.py::test_search_matches_the_pinned_run[drnas-darts]",
    "tests/study/test_old_store.py::test_old_store_metrics_status_and_report_match_what_the_old_code_computed",
    "tests/study/test_old_store.py::test_old_store_resumes_its_interrupted_and_pending_cells",
    "tests/study/test_store_readonly.py::test_status_and_report_on_a_read_only_file_system",
    "tests/study/test_study.py::test_capped_eval_killed_before_its_end_resumes_to_the_same_cap",
    "tests/study/test_study.py::test_caps_stop_a_phase_and_project_its_runtime",
    "tests/study/test_study.py::test_cell_killed_after_its_last_epoch_without_checkpoints_is_not_retrained",
    "tests/study/test_study.py::test_finished_cells_are_not_rerun",
    "tests/study/test_study.py::test_full_disk_stops_the_study_and_the_cell_resumes",
    "tests/study/test_study.py::test_killed_between_a_checkpoint_and_its_event_resumes_to_the_uninterrupted_result[3-eval/epoch/3]",
    "tests/study/test_study.py::test_out_of_memory_fails_one_cell_and_the_study_goes_on",
    "tests/study/test_study.py::test_search_cap_projects_the_search",
    "tests/study/test_study.py::test_status_shows_states",
    "tests/study/test_workers.py::test_a_killed_drivers_cell_is_taken_over_and_resumes_from_its_checkpoint",
    "tests/study/test_workers.py::test_a_stale_lease_of_another_machine_is_waited_for_then_taken_over",
    "tests/study/test_workers.py::test_two_drivers_on_one_store_run_every_cell_once",
    "tests/test_api.py::test_docs_api_examples",
    "tests/test_contracts.py::test_space_contract[hierarchical-supernet]",
    "tests/test_contracts.py::test_strategy_contract[fewshot-simple_cell]",
    "tests/test_export.py::test_generated_modules_run_with_nasmix_hidden",
    "tests/test_export_cell.py::test_trained_cell_exports_with_its_weights_and_card",
    "tests/test_fuzz_inputs.py::test_fuzz_flags",
    "tests/test_fuzz_inputs.py::test_fuzz_study_fields",
    "tests/test_train.py::test_resume_matches_uninterrupted_run",
    "tests/test_train.py::test_training_learns_the_synthetic_task",
    # the bad-input rows that build a network until the module cap refuses it
    "tests/test_bad_inputs.py::test_bad_input_exits_2_and_writes_nothing[run --opt space.cells=1e8]",
    "tests/test_bad_inputs.py::test_bad_input_exits_2_and_writes_nothing[study [space.nb201] cells 1e8]",
)


def pytest_collection_modifyitems(config, items):
    slow = set(LANE_SLOW)
    for item in items:
        # the real-CIFAR runs (ResNet-20 for 3 epochs, a GDAS epoch) take minutes: full suite only
        if item.nodeid in slow or item.get_closest_marker("cifar") is not None:
            item.add_marker(pytest.mark.slow)
