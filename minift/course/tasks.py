"""The course's task families (§2, §2.1): how to solve each one, draw its input, and ask for it.

Each task is a function of its input (``solve``), so every answer can be checked and rewarded
exactly. Eleven families are trained; three (``HELDOUT_TASKS``) are never trained on, to measure
the zero-shot claim of §1. Each family is phrased in English and Vietnamese, FLAN/T0 style; some
phrasings are held out of training to measure whether the model follows *instructions* or
memorises strings.
"""

from __future__ import annotations

import random
import unicodedata
from typing import Callable, NamedTuple

from minift.course.world import (
    EN_TO_VI,
    FACT_QUESTIONS,
    LEXICON,
    SENTIMENT_LABELS,
    SENTIMENT_SENTENCES,
    VI_TO_EN,
    WORDS,
)


class Task(NamedTuple):
    """One task family: its solver, an input sampler, and its instruction phrasings.

    ``en``/``vi`` are the phrasings used for training (or, for a held-out task, for evaluation);
    ``heldout_en``/``heldout_vi`` are kept out of training for the ``heldout_phrasing`` split.
    ``make_input(rng, lang)`` draws an input; ``lang`` is the language of the chosen phrasing.
    """

    name: str
    description: str
    solve: Callable[[str], str]
    make_input: Callable[[random.Random, str], str]
    en: tuple[str, ...]
    vi: tuple[str, ...]
    heldout_en: tuple[str, ...] = ()
    heldout_vi: tuple[str, ...] = ()


def _words(text: str) -> list[str]:
    return text.split()


def _numbers(text: str) -> list[int]:
    try:
        return [int(w) for w in text.split()]
    except ValueError:
        raise ValueError(f"expected whitespace-separated integers, got {text!r}") from None


def _translate(table: dict[str, str], direction: str) -> Callable[[str], str]:
    def solve(text: str) -> str:
        if text not in table:
            raise ValueError(f"{text!r} is not in the course lexicon ({direction}); "
                             "see minift.course.world.LEXICON for the words the data knows")
        return table[text]
    return solve


def _lookup(table: dict[str, str], what: str) -> Callable[[str], str]:
    def solve(text: str) -> str:
        if text not in table:
            raise ValueError(f"{text!r} is not one of the course's {what}; "
                             f"see minift.course.world for the closed list")
        return table[text]
    return solve


def _word_list(lo: int, hi: int, transform: Callable[[str], str] = str
               ) -> Callable[[random.Random, str], str]:
    def make(rng: random.Random, lang: str) -> str:
        return " ".join(transform(w) for w in rng.sample(WORDS, rng.randint(lo, hi)))
    return make


def _number_list(rng: random.Random, lang: str) -> str:
    # One-digit numbers: the tokenizer splits digits, so each number is one token and sorting is
    # about ordering 9 symbols, which a small model learns in a few hundred steps.
    return " ".join(str(n) for n in rng.sample(range(1, 10), rng.randint(3, 4)))


def _english_entry(rng: random.Random, lang: str) -> str:
    return rng.choice(LEXICON)[0]


def _vietnamese_entry(rng: random.Random, lang: str) -> str:
    return rng.choice(LEXICON)[1]


def _in_language(language_of: dict[str, str]) -> Callable[[random.Random, str], str]:
    """Inputs in the language of the phrasing, so the answer's language matches the instruction's."""
    by_lang: dict[str, list[str]] = {"en": [], "vi": []}
    for text, lang in language_of.items():
        by_lang[lang].append(text)

    def make(rng: random.Random, lang: str) -> str:
        return rng.choice(by_lang[lang])
    return make


TASKS: tuple[str, ...] = (
    "translate_en_vi", "translate_vi_en", "reverse_words", "uppercase", "count_words",
    "first_word", "last_word", "sort_numbers", "max_number", "sentiment", "fact_qa",
)
HELDOUT_TASKS: tuple[str, ...] = ("lowercase", "second_word", "min_number")

TASK_SPECS: dict[str, Task] = {t.name: t for t in (
    Task("translate_en_vi", "translate an English word or phrase of the lexicon into Vietnamese",
         _translate(EN_TO_VI, "English to Vietnamese"), _english_entry,
         en=("Translate this into Vietnamese.", "Translate the following English text to Vietnamese.",
             "What is this in Vietnamese?", "Give the Vietnamese translation.", "Say this in Vietnamese.",
             "Translate from English to Vietnamese.", "How do you say this in Vietnamese?",
             "Write this in Vietnamese."),
         vi=("Hãy dịch câu này sang tiếng Việt", "Dịch sang tiếng Việt.",
             "Dịch câu sau từ tiếng Anh sang tiếng Việt.", "Câu này trong tiếng Việt là gì?",
             "Hãy viết câu này bằng tiếng Việt.", "Chuyển câu tiếng Anh này sang tiếng Việt.",
             "Nói câu này bằng tiếng Việt.", "Bản dịch tiếng Việt của câu này là gì?"),
         heldout_en=("Render this English phrase in Vietnamese.", "Convert this text into Vietnamese."),
         heldout_vi=("Hãy chuyển ngữ câu sau sang tiếng Việt.", "Cho biết nghĩa tiếng Việt của câu này.")),
    Task("translate_vi_en", "translate a Vietnamese word or phrase of the lexicon into English",
         _translate(VI_TO_EN, "Vietnamese to English"), _vietnamese_entry,
         en=("Translate this into English.", "Translate the following Vietnamese text to English.",
             "What is this in English?", "Give the English translation.", "Say this in English.",
             "Translate from Vietnamese to English.", "How do you say this in English?",
             "Write this in English."),
         vi=("Hãy dịch câu này sang tiếng Anh", "Dịch sang tiếng Anh.",
             "Dịch câu sau từ tiếng Việt sang tiếng Anh.", "Câu này trong tiếng Anh là gì?",
             "Hãy viết câu này bằng tiếng Anh.", "Chuyển câu tiếng Việt này sang tiếng Anh.",
             "Nói câu này bằng tiếng Anh.", "Bản dịch tiếng Anh của câu này là gì?"),
         heldout_en=("Render this Vietnamese phrase in English.", "Convert this text into English."),
         heldout_vi=("Hãy chuyển ngữ câu sau sang tiếng Anh.", "Cho biết nghĩa tiếng Anh của câu này.")),
    Task("reverse_words", "write the words in reverse order",
         lambda s: " ".join(reversed(_words(s))), _word_list(2, 3),
         en=("Reverse the order of the words.", "Write the words in reverse order.",
             "Put these words backwards.", "List the words from last to first.",
             "Reverse the word order of this text.", "Read the words backwards.",
             "Flip the order of these words.", "Rewrite the words, last word first."),
         vi=("Đảo ngược thứ tự các từ.", "Viết các từ theo thứ tự ngược lại.",
             "Sắp xếp các từ theo thứ tự ngược.", "Liệt kê các từ từ cuối lên đầu.",
             "Hãy đảo thứ tự các từ trong câu này.", "Đọc các từ theo chiều ngược lại.",
             "Lật ngược thứ tự của các từ này.", "Viết lại các từ, từ cuối cùng đứng đầu."),
         heldout_en=("Please reverse these words.", "Give the words in reverse order."),
         heldout_vi=("Hãy viết ngược thứ tự các từ.", "Cho các từ theo thứ tự ngược lại.")),
    Task("uppercase", "write the text in capital letters",
         str.upper, _word_list(1, 2),
         en=("Convert to upper case.", "Write this in capital letters.", "Make every letter uppercase.",
             "Rewrite the text in all caps.", "Change these words to upper case.",
             "Capitalize every letter.", "Turn this into uppercase.", "Write the words in block capitals."),
         vi=("Chuyển thành chữ in hoa.", "Viết lại bằng chữ hoa.", "Viết hoa tất cả các chữ cái.",
             "Hãy viết hoa toàn bộ văn bản này.", "Đổi các từ này sang chữ in hoa.",
             "Viết đoạn này bằng chữ in hoa.", "In hoa mọi chữ cái.", "Chuyển văn bản sang chữ viết hoa."),
         heldout_en=("Put this text in capital letters.", "Write every word in upper case."),
         heldout_vi=("Hãy chuyển các từ này thành chữ in hoa.", "Viết các từ sau bằng chữ hoa.")),
    Task("count_words", "count the words (the answer is a digit)",
         lambda s: str(len(_words(s))), _word_list(2, 6),
         en=("Count the words.", "How many words are there?", "How many words does this text have?",
             "Give the number of words.", "Count how many words are in this text.",
             "What is the word count?", "Tell me the number of words.", "Count the words in the input."),
         vi=("Đếm số từ.", "Có bao nhiêu từ?", "Văn bản này có bao nhiêu từ?", "Cho biết số lượng từ.",
             "Hãy đếm số từ trong văn bản này.", "Số từ là bao nhiêu?", "Đoạn này gồm mấy từ?",
             "Đếm các từ trong câu sau."),
         heldout_en=("How long is this text in words?", "Return the total number of words."),
         heldout_vi=("Câu này dài bao nhiêu từ?", "Tổng số từ là mấy?")),
    Task("first_word", "give the first word",
         lambda s: _words(s)[0], _word_list(2, 5),
         en=("What is the first word?", "Give the first word.", "Return only the first word.",
             "Which word comes first?", "Write the first word of the text.", "Tell me the first word.",
             "Copy the first word.", "Output the word at the start."),
         vi=("Từ đầu tiên là gì?", "Cho biết từ đầu tiên.", "Chỉ viết từ đầu tiên.", "Từ nào đứng đầu?",
             "Hãy viết từ đầu tiên của câu.", "Từ đầu tiên của câu này là gì?", "Chép lại từ đầu tiên.",
             "Đưa ra từ ở đầu câu."),
         heldout_en=("Please give me only the first word.", "Which is the first word here?"),
         heldout_vi=("Hãy cho biết từ nào đứng đầu.", "Từ nào là từ đầu tiên?")),
    Task("last_word", "give the last word",
         lambda s: _words(s)[-1], _word_list(2, 5),
         en=("What is the last word?", "Give the last word.", "Return only the last word.",
             "Which word comes last?", "Write the last word of the text.", "Tell me the last word.",
             "Copy the last word.", "Output the word at the end."),
         vi=("Từ cuối cùng là gì?", "Cho biết từ cuối cùng.", "Chỉ viết từ cuối cùng.", "Từ nào đứng cuối?",
             "Hãy viết từ cuối cùng của câu.", "Từ cuối cùng của câu này là gì?", "Chép lại từ cuối cùng.",
             "Đưa ra từ ở cuối câu."),
         heldout_en=("Please give me only the last word.", "Which is the last word here?"),
         heldout_vi=("Hãy cho biết từ nào đứng cuối.", "Từ nào là từ cuối cùng?")),
    Task("sort_numbers", "sort 3-4 one-digit numbers in ascending order",
         lambda s: " ".join(str(n) for n in sorted(_numbers(s))), _number_list,
         en=("Sort these numbers from smallest to largest.", "Put the numbers in ascending order.",
             "Arrange the numbers from low to high.", "Order these numbers, smallest first.",
             "Sort the numbers in increasing order.", "List the numbers from small to big.",
             "Rewrite the numbers in ascending order.", "Sort the list of numbers."),
         vi=("Sắp xếp các số từ bé đến lớn.", "Xếp các số theo thứ tự tăng dần.", "Sắp xếp dãy số tăng dần.",
             "Hãy xếp các số này từ nhỏ đến lớn.", "Viết các số theo thứ tự tăng dần.",
             "Sắp xếp các số, số nhỏ nhất trước.", "Liệt kê các số từ nhỏ đến lớn.",
             "Xếp lại dãy số sau theo thứ tự tăng."),
         heldout_en=("Rank these numbers, lowest first.", "Give the numbers ordered upward."),
         heldout_vi=("Cho các số theo thứ tự từ thấp đến cao.", "Hãy sắp thứ tự tăng dần cho dãy số này.")),
    Task("max_number", "give the largest of 3-4 one-digit numbers",
         lambda s: str(max(_numbers(s))), _number_list,
         en=("What is the largest number?", "Find the biggest number.", "Which number is the largest?",
             "Give the maximum of these numbers.", "Return the largest number in the list.",
             "Tell me the biggest number.", "Pick the highest number.", "What is the maximum?"),
         vi=("Số lớn nhất là số nào?", "Tìm số lớn nhất.", "Số nào lớn nhất?", "Cho biết giá trị lớn nhất.",
             "Hãy chọn số lớn nhất trong dãy.", "Số lớn nhất trong dãy này là gì?", "Đưa ra số lớn nhất.",
             "Giá trị lớn nhất là bao nhiêu?"),
         heldout_en=("Which is the largest number here?", "Give me the biggest number."),
         heldout_vi=("Hãy tìm số lớn nhất trong dãy này.", "Trong các số này, số nào lớn nhất?")),
    Task("sentiment", "label a short review positive/negative (tích cực/tiêu cực), in its language",
         _lookup(SENTIMENT_SENTENCES, "review sentences"),
         _in_language({s: "en" if y in SENTIMENT_LABELS["en"] else "vi"
                       for s, y in SENTIMENT_SENTENCES.items()}),
         en=("Is this sentence positive or negative?", "Classify the sentiment.",
             "What is the sentiment of this text?", "Is the feeling here positive or negative?",
             "Label the sentiment as positive or negative.", "Does this review sound positive or negative?",
             "Decide if this is positive or negative.", "Tell me the sentiment of the sentence."),
         vi=("Câu này tích cực hay tiêu cực?", "Phân loại cảm xúc của câu.", "Cảm xúc của văn bản này là gì?",
             "Cảm xúc ở đây tích cực hay tiêu cực?", "Gán nhãn cảm xúc: tích cực hoặc tiêu cực.",
             "Nhận xét này tích cực hay tiêu cực?", "Hãy cho biết câu này tích cực hay tiêu cực.",
             "Xác định cảm xúc của câu sau."),
         heldout_en=("What attitude does this sentence express?",
                     "Judge whether the tone is positive or negative."),
         heldout_vi=("Thái độ của câu này là gì?", "Đánh giá giọng điệu của câu là tích cực hay tiêu cực.")),
    Task("fact_qa", "answer a question from the fact table, in the question's language",
         _lookup({q: a for q, (a, _, _) in FACT_QUESTIONS.items()}, "fact questions"),
         _in_language({q: lang for q, (_, lang, _) in FACT_QUESTIONS.items()}),
         en=("Answer the question.", "Answer this question briefly.", "Give a short answer.",
             "Reply with just the answer.", "Answer the following question.", "What is the answer?",
             "Give the answer in a few words.", "Respond to the question."),
         vi=("Trả lời câu hỏi.", "Trả lời ngắn gọn câu hỏi này.", "Hãy đưa ra câu trả lời ngắn.",
             "Chỉ ghi câu trả lời.", "Trả lời câu hỏi sau.", "Câu trả lời là gì?", "Trả lời bằng vài từ.",
             "Hãy trả lời câu hỏi này."),
         heldout_en=("Provide the correct answer to this.", "Solve this quiz question."),
         heldout_vi=("Cho biết đáp án đúng.", "Giải câu đố sau.")),
    # Held-out task families (never trained): each is a near neighbour of a trained one, so that
    # following them zero-shot is plausible (lowercase ~ uppercase, second ~ first/last word,
    # smallest ~ largest and sorted), and the corpus states each operation in plain sentences.
    Task("lowercase", "write the text in small letters (inputs are in capitals)",
         str.lower, _word_list(1, 3, str.upper),
         en=("Convert to lower case.", "Write this in small letters.", "Make every letter lowercase."),
         vi=("Chuyển thành chữ thường.", "Viết lại bằng chữ thường.", "Viết thường tất cả các chữ cái.")),
    Task("second_word", "give the second word",
         lambda s: _words(s)[1], _word_list(3, 5),
         en=("What is the second word?", "Give the second word.", "Return only the second word."),
         vi=("Từ thứ hai là gì?", "Cho biết từ thứ hai.", "Chỉ viết từ thứ hai.")),
    Task("min_number", "give the smallest of 3-4 one-digit numbers",
         lambda s: str(min(_numbers(s))), _number_list,
         en=("What is the smallest number?", "Find the smallest number.", "Which number is the smallest?"),
         vi=("Số nhỏ nhất là số nào?", "Tìm số nhỏ nhất.", "Số nào nhỏ nhất?")),
)}

# The article's own example (§1): the instruction a base model continues instead of following.
SECTION1_EXAMPLE: dict[str, str] = {
    "instruction": "Hãy dịch câu này sang tiếng Việt",
    "input": "I love my family",
    "output": "tôi yêu gia đình tôi",
    "task": "translate_en_vi",
}


def phrasings(task: str, *, heldout: bool = False) -> dict[str, tuple[str, ...]]:
    """The instruction phrasings of ``task`` by language: the trained ones, or the held-out ones."""
    spec = _spec(task)
    return {"en": spec.heldout_en, "vi": spec.heldout_vi} if heldout else {"en": spec.en, "vi": spec.vi}


def _spec(task: str) -> Task:
    if task not in TASK_SPECS:
        raise ValueError(f"unknown task {task!r}; the course tasks are {', '.join(TASK_SPECS)}")
    return TASK_SPECS[task]


def _key(instruction: str) -> str:
    return " ".join(unicodedata.normalize("NFC", instruction).split()).casefold()


PHRASING_TO_TASK: dict[str, str] = {
    _key(p): t.name for t in TASK_SPECS.values() for p in (*t.en, *t.vi, *t.heldout_en, *t.heldout_vi)
}


def solve(task: str, input: str) -> str:
    """The one true answer of ``task`` on ``input`` (every course task is a function of its input)."""
    return _spec(task).solve(input)


def task_of(instruction: str) -> str:
    """Which task an instruction phrasing asks for (whitespace and case are ignored)."""
    task = PHRASING_TO_TASK.get(_key(instruction))
    if task is None:
        raise ValueError(f"instruction {instruction!r} is not one of the course phrasings; pass task= "
                         "explicitly, or see minift.course.tasks.phrasings(task) for the known ones")
    return task

