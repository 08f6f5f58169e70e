"""Grading: run the tests that check each equation against the student's functions, and judge.

``grade`` runs, in one pytest process, the tests that ``minift.exercises.EXERCISES`` lists for each
function -- the same tests that check minift -- with the student's function put in place of the
library's during its own tests (``tests/conftest.py`` does the swap with ``exercises.patched``).
Each function scores all or nothing (``Score``): 100% when every check passes in a file that plays
by the rules, else 0%, since a loss that is right except on a batch with an empty row is a wrong
loss. ``refusals`` reads the student's source (it does not run it) for what would do the work: an
import of optax or importlib, of a whole minift module, of a helper the stub leaves out
(``exercises.HIDDEN``) or of minift's own version. The first failing check is reported as a
sentence in English (the test's name, ``in_words``) and in Vietnamese (``CHECKS_VI``).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

from minift.exercises import EXERCISES, FORBIDDEN_MODULES, HIDDEN, REPO, Exercise, exercise_of_test, student_file

# Each graded check in Vietnamese (the English is the test's name, ``in_words``).
CHECKS_VI = {
    "test_token_log_probs_matches_loop_reference": "log-xác suất từng token khớp với bản tham chiếu tính bằng vòng lặp (float64)",
    "test_token_log_probs_stable_at_huge_logits": "log-xác suất hữu hạn và đúng khi logit rất lớn (±3·10⁴)",
    "test_token_log_probs_promotes_half_precision_to_float32":
        "logit bf16 được tính ở float32 (và float64 vẫn là float64)",
    "test_sequence_log_prob_is_log_of_product_of_probabilities":
        "log-xác suất của chuỗi là log của tích các xác suất ở những vị trí có mặt nạ 1",
    "test_sft_loss_matches_loop_reference": "hàm mất mát SFT khớp với bản tham chiếu tính bằng vòng lặp",
    "test_reductions_differ_for_unequal_lengths_and_agree_for_equal":
        "trung bình theo token và theo chuỗi khác nhau khi độ dài khác nhau, trùng nhau khi độ dài bằng nhau",
    "test_sequence_reduction_averages_over_the_rows_that_have_a_response":
        "trung bình theo chuỗi chỉ chia cho số hàng có phản hồi (hàng rỗng không tính vào B)",
    "test_stable_at_huge_logits": "hàm mất mát và gradient hữu hạn, đúng khi logit rất lớn",
    "test_all_masked_batch_gives_zero_loss_and_zero_finite_grads":
        "batch không có token phản hồi nào cho mất mát 0 và gradient 0 hữu hạn (không phải 0/0 = NaN)",
    "test_gradient_matches_closed_form": "gradient khớp với dạng đóng (softmax − onehot)·m/N",
    "test_prompt_positions_get_exactly_zero_gradient": "các vị trí của lời nhắc nhận gradient đúng bằng 0",
    "test_gradient_descent_is_theta_minus_lr_grad": "một bước là θ − η·g",
    "test_gradient_descent_lowers_a_quadratic": "một bước làm giảm giá trị của một hàm bậc hai",
    "test_hand_written_adamw_matches_optax_over_100_steps": "AdamW viết tay khớp với optax.adamw sau 100 bước",
    "test_adamw_first_step_is_lr_times_sign_of_gradient":
        "bước đầu tiên là ±η, dù gradient lớn hay nhỏ (nhờ hiệu chỉnh độ lệch của m̂ và v̂)",
    "test_bradley_terry_matches_float64_reference": "hàm mất mát Bradley–Terry khớp với bản tham chiếu float64",
    "test_bradley_terry_gradient_is_closed_form": "gradient khớp với dạng đóng ∓(1 − σ(Δ))/B",
    "test_bradley_terry_stable_at_huge_margins": "hữu hạn và đúng khi chênh lệch phần thưởng rất lớn (±10⁴)",
    "test_unbiased_estimators_match_exact_kl_monte_carlo":
        "trung bình Monte-Carlo của k1, k3 khớp với KL chính xác (trong 5 sai số chuẩn)",
    "test_k3_is_never_negative": "k3 không bao giờ âm",
    "test_k1_and_k3_are_exactly_unbiased": "kỳ vọng chính xác của k1 và k3 bằng KL",
    "test_kl_of_policy_with_itself_is_exactly_zero": "KL của một chính sách với chính nó đúng bằng 0",
    "test_kl_estimators_are_their_formulas_away_from_the_reference":
        "k1, k2, k3 đúng công thức khi π_θ ≠ π_ref (k2 = ½(log r)²)",
    "test_k3_loss_gradient_is_gradient_of_reverse_kl": "kỳ vọng gradient của k3 là gradient của KL(π_ref ‖ π_θ)",
    "test_per_token_rewards_on_ragged_masks":
        "phần thưởng R(x, y) nằm ở token thật cuối cùng của mỗi câu trả lời, −β·KL ở mọi token thật",
    "test_per_token_rewards_carry_no_gradient_and_reject_negative_beta":
        "không có gradient chảy qua KL hay điểm số của mô hình phần thưởng; β âm bị từ chối",
    "test_gae_matches_loop_on_ragged_masks": "GAE khớp với vòng lặp lùi trên các mặt nạ độ dài khác nhau",
    "test_gae_lambda_one_is_reward_to_go_minus_value": "với λ = 1, lợi thế là tổng phần thưởng còn lại trừ giá trị",
    "test_ppo_clip_loss_matches_reference": "hàm mất mát có cắt khớp với bản tham chiếu float64",
    "test_ppo_loss_sends_no_gradient_into_the_advantages_or_the_old_policy":
        "không có gradient chảy vào lợi thế hay log π_old",
    "test_ppo_at_ratio_one_loss_is_minus_mean_advantage_but_gradient_is_not_zero":
        "ở tỉ số 1, mất mát là −trung bình(Â) nhưng gradient khác 0",
    "test_ppo_gradient_is_zero_exactly_in_the_clipped_region": "gradient đúng bằng 0 trong vùng bị cắt",
    "test_ppo_padding_gets_no_gradient_and_changes_nothing": "phần đệm không nhận gradient và không đổi kết quả",
    "test_ppo_diagnostics_match_a_standard_definition":
        "clip_frac, approx_kl, ratio_mean khớp với một định nghĩa chuẩn (TRL hoặc CleanRL), chỉ trên token thật",
    "test_ppo_diagnostics_at_ratio_one_and_in_the_clipped_region":
        "ở tỉ số 1: không cắt, KL 0, tỉ số 1; trong vùng bị cắt: đúng tỉ lệ bị cắt",
    "test_ece_by_hand": "ECE khớp với các ví dụ tính tay (mỗi khoảng có trọng số n_b/n)",
    "test_pool_bins_equals_binning_the_pooled_answers": "ECE của các lần chạy gộp lại bằng ECE của mọi câu trả lời",
}
NOT_WRITTEN_WORDS = ("not written yet (the body still raises NotImplementedError)",
                     "chưa viết (thân hàm vẫn chỉ raise NotImplementedError)")


class Score(NamedTuple):
    """One function's grade: all or nothing. Every check must pass, in a file that plays by the rules."""

    exercise: Exercise
    passed: int
    total: int
    first_failure: str  # "" when every check passed: the check in English, then in Vietnamese
    refused: str = ""  # why the file's imports void the grade, in English and Vietnamese ("" if they do not)

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.passed == self.total and not self.refused

    @property
    def fraction(self) -> float:
        """1.0 for a complete function, else 0.0: a function that is right on most inputs is wrong."""
        return 1.0 if self.complete else 0.0


def in_words(nodeid: str) -> str:
    """A test's name as the check it makes: ``test_prompt_positions_get_exactly_zero_gradient[token]``
    -> ``prompt positions get exactly zero gradient (token)``."""
    name, _, params = nodeid.split("::")[-1].partition("[")
    words = name.removeprefix("test_").replace("_", " ")
    return f"{words} ({params.rstrip(']')})" if params else words


def in_vietnamese(nodeid: str) -> str:
    """The same check in Vietnamese (``CHECKS_VI``), with its parameters."""
    name, _, params = nodeid.split("::")[-1].partition("[")
    words = CHECKS_VI[name]
    return f"{words} ({params.rstrip(']')})" if params else words


def refusals(folder: str | os.PathLike, module: str) -> dict[str, str]:
    """The exercises of ``module`` whose grade the student's file voids, each with the reason (in
    English, then Vietnamese): an import of ``FORBIDDEN_MODULES``, of a whole minift module, of a
    ``HIDDEN`` helper or of minift's own version of the exercise, or an exercise not defined in the
    file. Read from the source, not run; a file that does not parse is left to its failing tests."""
    path = student_file(folder, module)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return {}
    mine = [ex.name for ex in EXERCISES if ex.module == module]
    found: dict[str, str] = {}

    def refuse(names, line: int, en: str, vi: str) -> None:
        for name in names:
            found.setdefault(name, f"{path.name}, line {line}: {en} / {path.name}, dòng {line}: {vi}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in FORBIDDEN_MODULES:
                    refuse(mine, node.lineno, f"imports {alias.name}, which would do the exercise's work",
                           f"nhập {alias.name}, thư viện sẽ làm thay bài tập")
                elif root == "minift":
                    refuse(mine, node.lineno, f"imports the whole module {alias.name}; import only the names you need",
                           f"nhập cả mô-đun {alias.name}; chỉ nhập những tên cần dùng")
        elif isinstance(node, ast.ImportFrom):
            root = (node.module or "").split(".")[0]
            if root in FORBIDDEN_MODULES:
                refuse(mine, node.lineno, f"imports from {node.module}, which would do the exercise's work",
                       f"nhập từ {node.module}, thư viện sẽ làm thay bài tập")
            elif root == "minift":
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if alias.name == "*" or _is_module(full):
                        refuse(mine, node.lineno, f"imports {full if alias.name != '*' else node.module + ' *'} "
                               "as a whole; import only the names you need",
                               "nhập cả một mô-đun; chỉ nhập những tên cần dùng")
                    elif alias.name in HIDDEN.get(node.module, ()):
                        refuse(mine, node.lineno, f"imports {alias.name}, which the stub leaves out on purpose",
                               f"nhập {alias.name}, hàm mà tệp bài tập cố ý không nhập")
                    elif alias.name in mine:
                        refuse([alias.name], node.lineno, f"imports minift's own {alias.name}; write yours",
                               f"nhập {alias.name} của minift; hãy tự viết")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
            refuse(mine, node.lineno, "calls __import__", "gọi __import__")
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for name in mine:
        if name not in defined:
            found.setdefault(name, f"{path.name}: {name} is not defined in the file; write it there "
                                   f"/ {path.name}: tệp không định nghĩa {name}; hãy viết nó trong tệp")
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def grade(folder: str | os.PathLike | None, names: tuple[str, ...] = (), timeout: float = 900) -> list[Score]:
    """Run each exercise's tests with the student's function from ``folder`` in place of minift's
    (``folder=None``: minift's own, which must score 100%). One pytest process for all of them; a
    student function that raises, returns garbage or does not import fails its tests, never the grader.
    A function scores 100% when every one of its checks passes and its file imports nothing that
    would do its work (``refusals``), else 0%."""
    tests_dir = REPO / "tests"
    if not tests_dir.is_dir():
        raise FileNotFoundError(f"{tests_dir}: minift grade runs the repository's tests; use a clone of the repository")
    chosen = [ex for ex in EXERCISES if not names or ex.name in names]
    unknown = sorted(set(names) - {ex.name for ex in EXERCISES})
    if unknown:
        raise ValueError(f"unknown exercise(s) {unknown}; the exercises are {[ex.name for ex in EXERCISES]}")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        env = {**os.environ, "MINIFT_GRADE_REPORT": str(report), "MINIFT_GRADE": str(Path(folder).resolve()) if folder else ""}
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header",
                *(f"tests/{t}" for ex in chosen for t in ex.tests)]
        subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        if not report.is_file():
            raise RuntimeError("the grader's pytest run wrote no report: run `pytest tests/test_loss.py` to see why")
        results = json.loads(report.read_text(encoding="utf-8"))
    refused = {}
    if folder:
        for module in dict.fromkeys(ex.module for ex in chosen):
            refused.update({(module, name): why for name, why in refusals(folder, module).items()})
    scores = []
    for ex in chosen:
        mine = [r for r in results if exercise_of_test(r["nodeid"]) == ex]
        failed = [r for r in mine if r["outcome"] != "passed"]
        first = ""
        if failed:
            message = failed[0]["message"]
            if message.startswith("NotImplementedError"):
                first = " / ".join(NOT_WRITTEN_WORDS)
            else:
                first = f"{in_words(failed[0]['nodeid'])}: {message} / {in_vietnamese(failed[0]['nodeid'])}"
        scores.append(Score(ex, len(mine) - len(failed), len(mine), first, refused.get((ex.module, ex.name), "")))
    return scores
