"""Evaluation questions: emlab's sets as YAML package data, plus the paper's YAML format.

``load_questions("core")`` gives the 8 themes of the paper's main figure with their JSON and
template variants; a path loads any file in either format. The helpers derive the variants a
study needs (backdoor trigger, template, system prompt) without editing files.
"""

from emlab.questions.loader import QuestionFileError, available_sets, load_file, load_questions
from emlab.questions.transforms import in_context, with_system, with_template, with_trigger

__all__ = [
    "QuestionFileError",
    "available_sets",
    "in_context",
    "load_file",
    "load_questions",
    "with_system",
    "with_template",
    "with_trigger",
]
