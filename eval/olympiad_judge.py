"""OlympiadBench's official answer judge, ported rule for rule.

Source: OpenBMB/OlympiadBench ``eval/auto_scoring_judge.py`` (``AutoScoringJudge``; the same rules
as ``inference/code/math_judger.py``'s ``MathJudger``, which the official ``inference/judge.py``
calls), commit ba5b26a. ``judge(gold, answer, precision)``:
- preprocess both sides: the contents of every ``\\boxed{}`` joined by commas, else the ``$...$``
  parts of the last line, else the whole text; drop ``\\left``/``\\right``/``$``/``%``/degree and
  prime marks, read ``\\approx``/``\\sim`` as ``=``, keep what follows ``\\in``, unwrap
  ``\\mathrm{}``/``\\mathbf{}``; exactly equal strings are equal;
- several answers: split on top-level commas, expand each ``\\pm`` into ``+`` and ``-``, and pair
  every gold part with an equal answer part in any order (counts must match); ``precision`` is
  one tolerance or one per gold part;
- one answer against one gold, in order: intervals (same brackets, equal ends); numbers by
  ``float()`` within ``precision * 1.01`` of gold, gold/100 or gold*100; expressions (the part after
  ``=``) equal as sympy objects, or, both free of symbols, numerically within ``precision * 1.01``
  (so ``\\cos^{10}(\\pi/10)`` vs ``0.6054`` at 1e-4, ``7\\times10^{35}`` vs ``7.1\\cdot10^{35}`` at
  1e34), or, both with symbols, ``simplify(a - b)`` below 1e-3 — one side with a symbol (a unit, as
  in ``0.64N`` against ``0.64``) and the other without is unequal; equations equal when one side's
  ``lhs - rhs`` is an integer multiple of the other's.

The one change: upstream parses LaTeX with ``sympy.parsing.latex.parse_latex``, whose ANTLR backend
needs ``antlr4-python3-runtime`` 4.11, while math-verify (already a dependency) pins 4.13; both
cannot be installed together. We parse with ``latex2sympy2_extended.latex2sympy`` (math-verify's
parser, a descendant of the same latex2sympy grammar sympy's parser came from), with its
normalisation off and symbols kept in their case. On the official judge's 36 labelled examples
(``eval/scoring_examples.json``) this port agrees with the labels as
``tests/eval/test_olympiad_judge.py`` records. The module-level state of upstream's class
(``self.precision`` set per pair) is kept as an attribute so the pairing loop reads the same.

Runs inside `eval.deadline` workers: sympy's ``simplify`` and big powers can take unbounded time,
and the worker's deadline, not this code, bounds them (upstream's ``can_compute_power`` guard is
kept as well).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from typing import Any

import sympy as sp
from sympy import Eq, Pow, simplify, sympify

DEFAULT_PRECISION = 1e-8
_SPECIAL_SIGNAL_MAP = {
    "\\left": "",
    "\\right": "",
    "∶": ":",
    "，": ",",
    "$": "",
    "\\approx": "=",
    "\\simeq": "=",
    "\\sim": "=",
    "^\\prime": "'",
    "^{\\prime}": "'",
    "^\\circ": "",
    "%": "",
}
_MAX_EXP = 1000  # upstream's can_compute_power bound ("adjust based on computing environment")


def parse_latex(text: str) -> Any:
    """``sympy.parsing.latex.parse_latex`` (ANTLR backend) without its runtime version check.

    sympy's generated LaTeX lexer/parser are the ones upstream calls; sympy refuses to run them
    unless ``antlr4-python3-runtime`` is 4.11, while math-verify pins 4.13. The serialized ATN
    format is the same since ANTLR 4.10, so this builds sympy's own lexer, parser and converter
    on the installed runtime (body as ``sympy/parsing/latex/_parse_latex_antlr.py``'s
    ``parse_latex``, ``strict=False``), silencing only the runtime's version-mismatch print."""
    import antlr4
    from sympy.parsing.latex import _parse_latex_antlr as sympy_latex

    text = text.strip()
    listener = sympy_latex.MathErrorListener(text)
    with contextlib.redirect_stdout(io.StringIO()):  # "ANTLR runtime and generated code versions disagree"
        lexer = sympy_latex.LaTeXLexer(antlr4.InputStream(text))
        lexer.removeErrorListeners()
        lexer.addErrorListener(listener)
        parser = sympy_latex.LaTeXParser(antlr4.CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    return sympy_latex.convert_relation(parser.math().relation())


class OlympiadJudge:
    """``AutoScoringJudge``: ``judge(gold, answer, precision)`` (gold first, as upstream)."""

    def __init__(self) -> None:
        self.pi = parse_latex("\\pi")  # sympy's parser reads \\pi as the symbol pi, not sympy.pi
        self.precision = DEFAULT_PRECISION

    def split_by_comma(self, expr: str) -> list[str]:
        in_bracket_num = 0
        splitted_expr = []
        start_idx = 0
        for i, char in enumerate(expr):
            if char in ["(", "["]:
                in_bracket_num += 1
            elif char in [")", "]"]:
                in_bracket_num -= 1
            elif char == "," and in_bracket_num == 0:
                splitted_expr.append(expr[start_idx:i].strip())
                start_idx = i + 1
        if start_idx < len(expr):
            splitted_expr.append(expr[start_idx:].strip())
        return splitted_expr

    def trans_plus_minus_sign(self, expr_list: list[str]) -> list[str]:
        new_expr_list = []
        for expr in expr_list:
            if "\\pm" in expr:
                new_expr_list.append(expr.replace("\\pm", "+"))
                new_expr_list.append(expr.replace("\\pm", "-"))
            else:
                new_expr_list.append(expr)
        return new_expr_list

    def judge(self, expression1: str, expression2: str, precision: float | list[float] = 1e-8) -> bool:
        """Whether ``expression2`` (the answer) equals ``expression1`` (the gold)."""
        precision = list(precision) if isinstance(precision, list) else [precision]
        try:
            expression1, expression2 = self.preprocess(expression1, expression2)
        except Exception:  # noqa: BLE001 - upstream: a bare except -> False
            return False
        if expression1 == expression2:
            return True
        # upstream drops Chinese characters (answers like "能"/"不能" were compared above)
        expression1 = re.sub(r"[\u4e00-\u9fff]+", "", expression1)
        expression2 = re.sub(r"[\u4e00-\u9fff]+", "", expression2)
        temp_list1 = self.trans_plus_minus_sign(self.split_by_comma(expression1))
        temp_list2 = self.trans_plus_minus_sign(self.split_by_comma(expression2))
        if len(precision) <= 1:
            precision = precision * len(temp_list1)
        if len(temp_list1) != len(temp_list2):
            return False
        idx = -1
        while len(temp_list1) != 0:
            idx = (idx + 1) % len(temp_list1)
            item1 = temp_list1[idx]
            self.precision = precision[idx]
            for item2 in temp_list2:
                if self.is_equal(item1, item2):
                    temp_list1.remove(item1)
                    temp_list2.remove(item2)
                    precision.remove(self.precision)
                    break
            else:
                return False
        return True

    def is_interval(self, expr: str) -> bool:
        return expr.startswith(("(", "[")) and expr.endswith((")", "]"))

    def sympy_sub_pi(self, expression_sympy: Any) -> Any:
        return expression_sympy.subs(self.pi, math.pi)

    def is_equal(self, expression1: str, expression2: str) -> bool:
        if expression1 == expression2 and expression1 != "" and expression2 != "":
            return True
        if self.is_interval(expression1) and self.is_interval(expression2):
            try:
                if self.interval_equal(expression1, expression2):
                    return True
            except Exception:  # noqa: BLE001 - upstream: bare except -> False
                return False
        for check in (self.numerical_equal, self._expression_equal_not_both_equations, self.equation_equal):
            try:
                if check(expression1, expression2):
                    return True
            except Exception:  # noqa: BLE001, S112 - upstream: bare except -> try the next rule
                continue
        return False

    def _expression_equal_not_both_equations(self, expression1: str, expression2: str) -> bool:
        return self.expression_equal(expression1, expression2) and not (
            "=" in expression1 and "=" in expression2
        )

    def numerical_equal(self, expression1: str, expression2: str, include_percentage: bool = True) -> bool:
        reference = float(expression1)
        prediction = float(expression2)
        gt_result = [reference / 100, reference, reference * 100] if include_percentage else [reference]
        return any(abs(item - prediction) <= self.precision * 1.01 for item in gt_result)

    def expression_equal(self, exp1: str, exp2: str) -> bool:
        def extract_expression(expression: str) -> str:
            if "=" in expression:
                expression = expression.split("=")[1]
            return expression.strip()

        expr1_sym = sympify(parse_latex(extract_expression(exp1)))
        expr2_sym = sympify(parse_latex(extract_expression(exp2)))
        if expr1_sym == expr2_sym:
            return True
        expr1_sym = self.sympy_sub_pi(expr1_sym)
        expr2_sym = self.sympy_sub_pi(expr2_sym)
        has1, has2 = expr1_sym.has(sp.Symbol), expr2_sym.has(sp.Symbol)
        if has1 != has2:
            return False
        if not has1:
            try:
                if not (self.can_compute_power(expr1_sym) and self.can_compute_power(expr2_sym)):
                    return False
                return bool(abs(expr1_sym.evalf() - expr2_sym.evalf()) <= self.precision * 1.01)
            except Exception:  # noqa: BLE001 - upstream: bare except -> False
                return False
        try:
            return bool(abs(simplify(expr1_sym - expr2_sym).evalf()) < 1e-3)
        except Exception:  # noqa: BLE001 - upstream: bare except -> False
            return False

    def equation_equal(self, expression1: str, expression2: str) -> bool:
        def simplify_equation(latex_eq: str) -> Any:
            lhs, rhs = latex_eq.split("=")
            equation = Eq(parse_latex(lhs), parse_latex(rhs))
            return simplify(equation.lhs - equation.rhs)

        expr1_sym = simplify_equation(expression1)
        expr2_sym = simplify_equation(expression2)
        division_result_1 = simplify(expr1_sym / expr2_sym)
        division_result_2 = simplify(expr2_sym / expr1_sym)
        return bool(
            (division_result_1.is_Integer and division_result_1 != 0)
            or (division_result_2.is_Integer and division_result_2 != 0)
        )

    def interval_equal(self, expression1: str, expression2: str) -> bool:
        def compare_two_interval(inter1: str, inter2: str) -> bool:
            if inter1[0] != inter2[0] or inter1[-1] != inter2[-1]:
                return False
            items_1 = inter1.strip("[]()").split(",")
            items_2 = inter2.strip("[]()").split(",")
            return all(
                self.expression_equal(a, b) for a, b in zip(items_1, items_2, strict=False)
            )  # upstream: plain zip

        if expression1 == expression2:
            return True
        inter_list1 = expression1.split("\\cup")
        inter_list2 = expression2.split("\\cup")
        if len(inter_list1) != len(inter_list2):
            return False
        return all(compare_two_interval(a, b) for a, b in zip(inter_list1, inter_list2, strict=True))

    def preprocess(self, expression1: str, expression2: str) -> tuple[str, str]:
        def extract_boxed_content(latex_str: str) -> str:
            results = ""
            for match in re.finditer(r"\\boxed{", latex_str):
                start_index = end_index = match.end()
                stack = 1
                while stack > 0 and end_index < len(latex_str):
                    if latex_str[end_index] == "{":
                        stack += 1
                    elif latex_str[end_index] == "}":
                        stack -= 1
                    end_index += 1
                if stack != 0:
                    raise ValueError("Mismatched braces in LaTeX string.")
                results += latex_str[start_index : end_index - 1] + ","
            if results == "":
                last_line_ans = latex_str.strip().split("\n")[-1]
                answers = re.findall(r"\$(.*?)\$", last_line_ans)
                results = "".join(ans + "," for ans in answers) if answers else latex_str
            return results

        def special_symbol_replace(expression: str) -> str:
            if "\\in " in expression:
                expression = expression.split("\\in ")[1]
            for signal, replacement in _SPECIAL_SIGNAL_MAP.items():
                expression = expression.replace(signal, replacement)
            expression = expression.strip("\n$,.:;^_=+`!@#$%^&*~，。")  # noqa: B005 - upstream strips characters
            return re.sub(r"\\(?:mathrm|mathbf)\{~?([^}]*)\}", r"\1", expression)

        exp1, exp2 = extract_boxed_content(expression1), extract_boxed_content(expression2)
        return special_symbol_replace(exp1), special_symbol_replace(exp2)

    def can_compute_power(self, expr: Any) -> bool:
        if isinstance(expr, Pow):
            base, exp = expr.as_base_exp()
            if base.is_number and exp.is_number:
                return not abs(exp.evalf()) > _MAX_EXP
            return False
        return True


def parse_precision(error: Any) -> float | list[float]:
    """The item's ``error`` field as ``inference/judge.py`` reads it: "" -> 1e-8; "a,b" -> a list
    (an empty part -> 1e-8); else one float."""
    if error is None or str(error).strip() == "":
        return DEFAULT_PRECISION
    text = str(error)
    if "," in text:
        return [float(p) if p else DEFAULT_PRECISION for p in text.split(",")]
    return float(text)
