"""The bundled course data (data/samples/), designed so the whole article can be taught on a laptop CPU.

Every file in ``data/samples/`` except ``tokenizer.model`` is written by :func:`generate`, from the
small closed world below, with fixed seeds and no network. Each file serves one section:

* ``corpus.txt`` (§1): raw English and Vietnamese text for the *base model* (mô hình nền tảng). It
  states the lexicon pairs, the facts, sentiment words, numbers and letter case in ordinary
  sentences, but never shows an instruction followed by its answer, so the base model *continues*
  "Hãy dịch câu này sang tiếng Việt" instead of translating.
* ``instructions.jsonl`` (§2, §2.1): Instruction / Input / Output triples for 11 task families in
  FLAN/T0 style, each phrased 10 ways in English and 10 in Vietnamese. Two splits measure the two
  claims of §1–§2: ``heldout_phrasing`` (trained tasks, instruction wordings never trained on) and
  ``heldout_task`` (task families never trained on: the zero-shot claim). ``sentiment`` is the
  "traditional fine-tuning" task of §2 (one task, one label set).
* ``preferences.jsonl`` (§4): chosen/rejected responses for the reward model, labelled by the
  programmatic judge :func:`judge`, which is also the *gold* reward PPO is scored with.
* ``ood.jsonl`` (§5): questions whose true answer the data never contains (hallucination).

Design for learnability (a ~1M-parameter model, 1,600 SFT steps of batch 16 on a CPU): a lexicon of
128 English–Vietnamese entries, a table of 38 facts, word inputs of 1–6 short words, 3–4 one-digit
numbers, answers of at most 5 words, instructions of at most 12 words. Every answer is a function
of (task, input), computed by :func:`solve`, so outputs can be checked and rewarded exactly.

Deviation from the article: the "human" judgements of §4 are a program (:func:`judge`), so that
the course can measure what a learned reward model gets wrong (reward over-optimisation).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import unicodedata
from pathlib import Path
from typing import Callable, NamedTuple

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "data" / "samples"
CORPUS_FILE = "corpus.txt"
INSTRUCTIONS_FILE = "instructions.jsonl"
OOD_FILE = "ood.jsonl"
PREFERENCES_FILE = "preferences.jsonl"
README_FILE = "README.md"
GENERATED_FILES = (CORPUS_FILE, INSTRUCTIONS_FILE, OOD_FILE, PREFERENCES_FILE, README_FILE)

SPLITS = ("train", "heldout_phrasing", "heldout_task")
INSTRUCTION_FIELDS = ("instruction", "input", "output", "task", "split")
PREFERENCE_FIELDS = ("prompt", "instruction", "input", "chosen", "rejected", "task", "kind", "split")
OOD_FIELDS = ("instruction", "input", "task", "resembles", "absent", "note")

SEED = 20240601  # every random choice below derives from this and the name of what it draws

# How many examples of each kind: sized so that the demo's SFT (1600 steps of 16) sees each one
# about 2.6 times; drawing twice as many distinct inputs as one would memorise is cheap here.
# Tasks that copy words from the input are learned slowest by a small model, so they get more
# examples; sentiment, counting and the facts are learned in a few hundred steps with fewer.
TRAIN_EXAMPLES: dict[str, int] = {
    "translate_en_vi": 880, "translate_vi_en": 880, "reverse_words": 1280, "uppercase": 1120,
    "count_words": 640, "first_word": 960, "last_word": 960, "sort_numbers": 1040, "max_number": 800,
    "sentiment": 560, "fact_qa": 720,
}
HELDOUT_PHRASING_PER_TASK = 48
HELDOUT_TASK_EXAMPLES = 40
N_PREFERENCES = 2000
PREFERENCE_HELDOUT_FRACTION = 0.1
CORPUS_DOCS = 4000

# ----------------------------------------------------------------------------------------------
# The closed world: a bilingual lexicon and a fact table. Everything the tasks ask about is here.
# ----------------------------------------------------------------------------------------------

# (English, Vietnamese) by category; one-to-one in both directions so translation has one answer.
LEXICON_BY_CATEGORY: dict[str, tuple[tuple[str, str], ...]] = {
    "animal": (("dog", "con chó"), ("cat", "con mèo"), ("bird", "con chim"), ("fish", "con cá"),
               ("chicken", "con gà"), ("duck", "con vịt"), ("pig", "con lợn"), ("cow", "con bò"),
               ("horse", "con ngựa"), ("tiger", "con hổ"), ("elephant", "con voi"),
               ("monkey", "con khỉ"), ("spider", "con nhện"), ("ant", "con kiến")),
    "food": (("rice", "cơm"), ("water", "nước"), ("tea", "trà"), ("coffee", "cà phê"),
             ("milk", "sữa"), ("bread", "bánh mì"), ("egg", "quả trứng"), ("banana", "quả chuối"),
             ("apple", "quả táo"), ("orange", "quả cam"), ("mango", "quả xoài"), ("meat", "thịt")),
    "person": (("mother", "mẹ"), ("father", "bố"), ("child", "đứa trẻ"), ("friend", "người bạn"),
               ("teacher", "giáo viên"), ("student", "học sinh"), ("doctor", "bác sĩ"),
               ("family", "gia đình"), ("baby", "em bé"), ("woman", "người phụ nữ")),
    "nature": (("sun", "mặt trời"), ("moon", "mặt trăng"), ("star", "ngôi sao"),
               ("sky", "bầu trời"), ("sea", "biển"), ("river", "dòng sông"),
               ("mountain", "ngọn núi"), ("tree", "cái cây"), ("flower", "bông hoa"),
               ("rain", "mưa"), ("snow", "tuyết"), ("fire", "lửa")),
    "object": (("house", "ngôi nhà"), ("school", "trường học"), ("book", "quyển sách"),
               ("pen", "cái bút"), ("table", "cái bàn"), ("chair", "cái ghế"),
               ("door", "cái cửa"), ("car", "xe hơi"), ("bicycle", "xe đạp"),
               ("phone", "điện thoại"), ("city", "thành phố"), ("market", "chợ")),
    "colour": (("red", "màu đỏ"), ("blue", "màu xanh dương"), ("green", "màu xanh lá"),
               ("yellow", "màu vàng"), ("white", "màu trắng"), ("black", "màu đen"),
               ("pink", "màu hồng"), ("brown", "màu nâu")),
    "adjective": (("big", "to"), ("small", "nhỏ"), ("hot", "nóng"), ("cold", "lạnh"),
                  ("good", "tốt"), ("beautiful", "đẹp"), ("happy", "vui"), ("sad", "buồn"),
                  ("fast", "nhanh"), ("slow", "chậm"), ("new", "mới"), ("old", "cũ"),
                  ("delicious", "ngon"), ("hungry", "đói")),
    "verb": (("eat", "ăn"), ("drink", "uống"), ("sleep", "ngủ"), ("go", "đi"), ("run", "chạy"),
             ("read", "đọc"), ("write", "viết"), ("learn", "học"), ("love", "yêu"),
             ("swim", "bơi"), ("sing", "hát"), ("play", "chơi")),
    "number": (("one", "một"), ("two", "hai"), ("three", "ba"), ("four", "bốn"), ("five", "năm"),
               ("six", "sáu"), ("seven", "bảy"), ("eight", "tám"), ("nine", "chín"),
               ("ten", "mười")),
    "time": (("today", "hôm nay"), ("tomorrow", "ngày mai"), ("yesterday", "hôm qua"),
             ("morning", "buổi sáng")),
    "phrase": (("hello", "xin chào"), ("thank you", "cảm ơn"), ("goodbye", "tạm biệt"),
               ("good morning", "chào buổi sáng"), ("good night", "chúc ngủ ngon"),
               ("I love you", "tôi yêu bạn"), ("how are you", "bạn có khỏe không"),
               ("I am hungry", "tôi đói"), ("I am tired", "tôi mệt"),
               ("the dog is big", "con chó rất to"), ("the cat is small", "con mèo rất nhỏ"),
               ("I drink water", "tôi uống nước"), ("I eat rice", "tôi ăn cơm"),
               ("she reads a book", "cô ấy đọc sách"), ("we go to school", "chúng tôi đi học"),
               ("it is raining", "trời đang mưa"), ("I like tea", "tôi thích trà"),
               ("see you tomorrow", "hẹn gặp lại ngày mai"),
               ("the flower is beautiful", "bông hoa rất đẹp"),
               ("I love my family", "tôi yêu gia đình tôi")),
}
LEXICON: tuple[tuple[str, str], ...] = tuple(p for pairs in LEXICON_BY_CATEGORY.values() for p in pairs)
EN_TO_VI: dict[str, str] = dict(LEXICON)
VI_TO_EN: dict[str, str] = {vi: en for en, vi in LEXICON}
# The English words the word-manipulation tasks are built from: lower case, one word, at most five
# letters, so that most are a single SentencePiece token and copying a word is copying one token.
WORDS: tuple[str, ...] = tuple(en for en, _ in LEXICON if " " not in en and en.islower() and len(en) <= 5)

# Facts: (English subject, Vietnamese subject, English answer, Vietnamese answer).
CAPITALS: tuple[tuple[str, str, str, str], ...] = (
    ("Vietnam", "Việt Nam", "Hanoi", "Hà Nội"), ("France", "Pháp", "Paris", "Paris"),
    ("Japan", "Nhật Bản", "Tokyo", "Tokyo"), ("China", "Trung Quốc", "Beijing", "Bắc Kinh"),
    ("England", "Anh", "London", "Luân Đôn"), ("Thailand", "Thái Lan", "Bangkok", "Băng Cốc"),
    ("Korea", "Hàn Quốc", "Seoul", "Seoul"), ("Germany", "Đức", "Berlin", "Berlin"),
    ("Italy", "Ý", "Rome", "Rô-ma"), ("Russia", "Nga", "Moscow", "Mát-xcơ-va"),
    ("Egypt", "Ai Cập", "Cairo", "Cai-rô"), ("Spain", "Tây Ban Nha", "Madrid", "Ma-đrít"),
    ("Laos", "Lào", "Vientiane", "Viêng Chăn"), ("Cambodia", "Campuchia", "Phnom Penh", "Phnôm Pênh"),
    ("India", "Ấn Độ", "New Delhi", "Niu Đê-li"), ("Canada", "Ca-na-đa", "Ottawa", "Ốt-ta-oa"),
    ("Australia", "Úc", "Canberra", "Can-bê-ra"),
)
COLOURS_OF: tuple[tuple[str, str, str, str], ...] = (
    ("the sky", "bầu trời", "blue", "màu xanh dương"), ("the sea", "biển", "blue", "màu xanh dương"),
    ("grass", "cỏ", "green", "màu xanh lá"), ("a leaf", "chiếc lá", "green", "màu xanh lá"),
    ("snow", "tuyết", "white", "màu trắng"), ("milk", "sữa", "white", "màu trắng"),
    ("a banana", "quả chuối", "yellow", "màu vàng"), ("a sunflower", "hoa hướng dương", "yellow", "màu vàng"),
    ("blood", "máu", "red", "màu đỏ"), ("a tomato", "quả cà chua", "red", "màu đỏ"),
    ("coal", "than", "black", "màu đen"), ("chocolate", "sô-cô-la", "brown", "màu nâu"),
)
LEGS_OF: tuple[tuple[str, str, int], ...] = (
    ("a dog", "con chó", 4), ("a cat", "con mèo", 4), ("a horse", "con ngựa", 4),
    ("a cow", "con bò", 4), ("a bird", "con chim", 2), ("a chicken", "con gà", 2),
    ("a duck", "con vịt", 2), ("an ant", "con kiến", 6), ("a spider", "con nhện", 8),
)
N_FACTS = len(CAPITALS) + len(COLOURS_OF) + len(LEGS_OF)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fact_questions() -> dict[str, tuple[str, str, str]]:
    """Every fact question the data asks -> (answer, language, relation); two wordings a language."""
    q: dict[str, tuple[str, str, str]] = {}
    for c_en, c_vi, a_en, a_vi in CAPITALS:
        q[f"What is the capital of {c_en}?"] = (a_en, "en", "capital")
        q[f"Which city is the capital of {c_en}?"] = (a_en, "en", "capital")
        q[f"Thủ đô của {c_vi} là gì?"] = (a_vi, "vi", "capital")
        q[f"Thành phố nào là thủ đô của {c_vi}?"] = (a_vi, "vi", "capital")
    for t_en, t_vi, a_en, a_vi in COLOURS_OF:
        q[f"What colour is {t_en}?"] = (a_en, "en", "colour")
        q[f"What is the colour of {t_en}?"] = (a_en, "en", "colour")
        q[f"{_cap(t_vi)} có màu gì?"] = (a_vi, "vi", "colour")
        q[f"Màu của {t_vi} là màu gì?"] = (a_vi, "vi", "colour")
    for t_en, t_vi, n in LEGS_OF:
        q[f"How many legs does {t_en} have?"] = (str(n), "en", "legs")
        q[f"How many legs has {t_en} got?"] = (str(n), "en", "legs")
        q[f"{_cap(t_vi)} có mấy chân?"] = (str(n), "vi", "legs")
        q[f"{_cap(t_vi)} có bao nhiêu chân?"] = (str(n), "vi", "legs")
    return q


FACT_QUESTIONS: dict[str, tuple[str, str]] = _fact_questions()

# Sentiment: short reviews built from these words; the label is in the language of the review.
SENTIMENT_LABELS = {"en": ("positive", "negative"), "vi": ("tích cực", "tiêu cực")}
SENTIMENT_THINGS = {
    "en": ("movie", "book", "song", "food", "hotel", "game", "phone", "class", "trip", "coffee"),
    "vi": ("bộ phim", "quyển sách", "bài hát", "món ăn", "khách sạn", "trò chơi", "điện thoại",
           "lớp học", "chuyến đi", "quán cà phê"),
}
SENTIMENT_WORDS = {  # language -> (positive adjectives, negative adjectives)
    "en": (("good", "great", "wonderful", "excellent", "amazing", "lovely", "nice", "fun"),
           ("bad", "terrible", "awful", "boring", "horrible", "ugly", "dirty", "disappointing")),
    "vi": (("hay", "tốt", "tuyệt vời", "thú vị", "đẹp"),
           ("dở", "tệ", "chán", "kinh khủng", "xấu", "nhàm chán")),
}
SENTIMENT_TEMPLATES = {  # (template, polarity): None = the adjective decides, +1/-1 = the verb does
    "en": (("this {thing} is {adj}", None), ("the {thing} was {adj}", None),
           ("what a {adj} {thing}", None), ("the {thing} is really {adj}", None),
           ("I love this {thing}", +1), ("I really like the {thing}", +1),
           ("I hate this {thing}", -1), ("I do not like the {thing}", -1)),
    "vi": (("{thing} này rất {adj}", None), ("{thing} hôm qua rất {adj}", None),
           ("{thing} này {adj} quá", None), ("tôi thấy {thing} này {adj}", None),
           ("tôi rất thích {thing} này", +1), ("tôi yêu {thing} này", +1),
           ("tôi ghét {thing} này", -1), ("tôi không thích {thing} này", -1)),
}


def _sentiment_sentences() -> dict[str, str]:
    """Every review sentence -> its label."""
    out: dict[str, str] = {}
    for lang in ("en", "vi"):
        pos_label, neg_label = SENTIMENT_LABELS[lang]
        pos_words, neg_words = SENTIMENT_WORDS[lang]
        for template, polarity in SENTIMENT_TEMPLATES[lang]:
            for thing in SENTIMENT_THINGS[lang]:
                if polarity is None:
                    for adj in pos_words:
                        out[template.format(thing=thing, adj=adj)] = pos_label
                    for adj in neg_words:
                        out[template.format(thing=thing, adj=adj)] = neg_label
                else:
                    out[template.format(thing=thing)] = pos_label if polarity > 0 else neg_label
    return {_cap(s): label for s, label in out.items()}


SENTIMENT_SENTENCES: dict[str, str] = _sentiment_sentences()

# ----------------------------------------------------------------------------------------------
# Tasks: how to solve each one, how to draw its input, and how people ask for it.
# ----------------------------------------------------------------------------------------------


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
                             "see minift.coursedata.LEXICON for the words the data knows")
        return table[text]
    return solve


def _lookup(table: dict[str, str], what: str) -> Callable[[str], str]:
    def solve(text: str) -> str:
        if text not in table:
            raise ValueError(f"{text!r} is not one of the course's {what}; "
                             f"see minift.coursedata for the closed list")
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
                         "explicitly, or see minift.coursedata.phrasings(task) for the known ones")
    return task


# ----------------------------------------------------------------------------------------------
# The judge (§4): the gold reward that labels the preference pairs and scores PPO samples.
# ----------------------------------------------------------------------------------------------

LENGTH_PENALTY = 0.1  # per word beyond the true answer's length: rambling costs a little per word
PARTIAL_CREDIT = 0.5  # a wrong answer earns at most half a right one, in proportion to word overlap


def _normalise(text: str) -> str:
    text = " ".join(unicodedata.normalize("NFC", text).split())
    return text[:-1].rstrip() if text.endswith(".") else text


def word_f1(response: str, truth: str) -> float:
    """Word-overlap F1 (multiset, case-insensitive), as in SQuAD: 2PR/(P+R)."""
    r, t = _normalise(response).casefold().split(), _normalise(truth).casefold().split()
    common = sum(min(r.count(w), t.count(w)) for w in set(r))
    if common == 0:
        return 0.0
    precision, recall = common / len(r), common / len(t)
    return 2 * precision * recall / (precision + recall)


def gold_reward(response: str, truth: str) -> float:
    r"""The programmatic judge's reward for ``response`` when the true answer is ``truth`` (§4).

    .. math::
        R^\star(y) = \mathbb{1}[y = y^\star]
                     + \tfrac12\,\mathbb{1}[y \ne y^\star]\,F_1(y, y^\star)
                     - \lambda \max(0, |y| - |y^\star|), \qquad \text{clipped to } [-1, 1]

    :math:`y = y^\star` after trimming whitespace and one trailing full stop (case matters: the
    upper-case task depends on it); :math:`|y|` counts words; :math:`\lambda` = ``LENGTH_PENALTY``.
    Only an exactly right answer reaches 1; the length term is what a reward model that learned
    "longer looks more complete" will be caught by (over-optimisation, §4).
    """
    exact = _normalise(response) == _normalise(truth)
    correctness = 1.0 if exact else PARTIAL_CREDIT * word_f1(response, truth)
    extra_words = max(0, len(_normalise(response).split()) - len(_normalise(truth).split()))
    return max(-1.0, min(1.0, correctness - LENGTH_PENALTY * extra_words))


def judge(instruction: str, input: str, response: str | None = None, *, task: str | None = None) -> float:
    """Gold reward of ``response`` to (instruction, input): :func:`gold_reward` against :func:`solve`.

    The task is read from the instruction phrasing unless ``task`` is given. Called with two
    arguments, ``judge(prompt, response)``, it reads the instruction and input out of the prompt
    text (see :func:`judge_prompt`).
    """
    if response is None:
        return judge_prompt(instruction, input, task=task)
    return gold_reward(response, solve(task or task_of(instruction), input))


_PHRASINGS_LONGEST_FIRST = sorted(
    {p for t in TASK_SPECS.values() for p in (*t.en, *t.vi, *t.heldout_en, *t.heldout_vi)},
    key=lambda p: (-len(p), p))
_TEMPLATE_NOISE = re.compile(r"\[/?INST\]|<<SYS>>|<</SYS>>|</?s>|<\|[^|]*\|>")


def parse_prompt(prompt: str) -> tuple[str, str]:
    """(instruction, input) of a prompt: :func:`prompt_text` output or a templated prompt.

    The instruction is the longest course phrasing found in the prompt; the input is the text
    after it, without template lines (``### Response:``, ``Input:``, chat markers).
    """
    text = unicodedata.normalize("NFC", prompt)
    folded = text.casefold()
    best = None
    for p in _PHRASINGS_LONGEST_FIRST:
        at = folded.find(p.casefold())
        if at >= 0:
            best = (p, at)
            break
    if best is None:
        raise ValueError("the prompt contains none of the course instruction phrasings; call "
                         "judge(instruction, input, response) with the parts instead")
    phrasing, at = best
    lines = []
    for line in _TEMPLATE_NOISE.sub(" ", text[at + len(phrasing):]).splitlines():
        line = line.strip()
        if not line or line.startswith("#") or (line.endswith(":") and len(line.split()) <= 3):
            continue
        line = re.sub(r"^(###\s*)?(Input|Context|Ngữ cảnh|Đầu vào)\s*:\s*", "", line)
        lines.append(line)
    return phrasing, " ".join(lines).strip()


def judge_prompt(prompt: str, response: str, *, task: str | None = None) -> float:
    """:func:`judge` for a whole prompt string (the contract's ``judge(prompt, response)`` form)."""
    instruction, input = parse_prompt(prompt)
    return judge(instruction, input, response, task=task)


def prompt_text(instruction: str, input: str) -> str:
    """The template-free prompt stored in preferences.jsonl: instruction, then input on a new line."""
    return f"{instruction}\n{input}" if input else instruction


# ----------------------------------------------------------------------------------------------
# instructions.jsonl
# ----------------------------------------------------------------------------------------------


def _record(instruction: str, input: str, task: str, split: str) -> dict[str, str]:
    return {"instruction": instruction, "input": input, "output": solve(task, input),
            "task": task, "split": split}


def _draw(task: str, phrasings_by_lang: dict[str, tuple[str, ...]], n: int, split: str,
          rng: random.Random) -> list[dict[str, str]]:
    """``n`` distinct (instruction, input) examples, cycling through the phrasings evenly."""
    spec = _spec(task)
    cycle = [(p, lang) for pair in zip(phrasings_by_lang["en"], phrasings_by_lang["vi"])
             for p, lang in zip(pair, ("en", "vi"))]
    seen: set[tuple[str, str]] = set()
    out = []
    for i in range(n):
        phrasing, lang = cycle[i % len(cycle)]
        for _ in range(1000):  # redraw duplicates; every pool is far larger than what is drawn
            x = spec.make_input(rng, lang)
            if (phrasing, x) not in seen:
                break
        else:
            raise ValueError(f"{task}: cannot draw {n} distinct examples; lower its example count")
        seen.add((phrasing, x))
        out.append(_record(phrasing, x, task, split))
    return out


def build_instructions() -> list[dict[str, str]]:
    """All instruction examples: train (shuffled), then heldout_phrasing and heldout_task by task."""
    train: list[dict[str, str]] = []
    heldout: list[dict[str, str]] = []
    for task in TASKS:
        train += _draw(task, phrasings(task), TRAIN_EXAMPLES[task], "train",
                       random.Random(f"{SEED}:train:{task}"))
        heldout += _draw(task, phrasings(task, heldout=True), HELDOUT_PHRASING_PER_TASK, "heldout_phrasing",
                         random.Random(f"{SEED}:heldout_phrasing:{task}"))
    for task in HELDOUT_TASKS:
        heldout += _draw(task, phrasings(task), HELDOUT_TASK_EXAMPLES, "heldout_task",
                         random.Random(f"{SEED}:heldout_task:{task}"))
    random.Random(f"{SEED}:shuffle").shuffle(train)
    return train + heldout


# ----------------------------------------------------------------------------------------------
# preferences.jsonl: chosen = the true answer; rejected = a plausible mistake of one of five kinds
# ----------------------------------------------------------------------------------------------

# Mistake kinds, how often each is drawn, and what it is. The mix is deliberately skewed: rejected
# answers are more often *shorter* than the chosen one (truncated) than longer (rambling, repeated),
# so a reward model can learn the spurious cue "longer is better", which the gold judge's length
# penalty punishes: the reward over-optimisation of §4 (cf. Singhal et al. 2023, length in RLHF).
REJECTION_KINDS: tuple[tuple[str, float], ...] = (
    ("wrong", 0.45), ("truncated", 0.35), ("copy_input", 0.10), ("rambling", 0.05), ("repeated", 0.05),
)
REJECTION_DESCRIPTIONS: dict[str, str] = {
    "wrong": "a plausible wrong answer: another lexicon entry or fact of the same kind, a shuffled "
             "list, a count off by one, another word or number of the input, the flipped label",
    "truncated": "the first half of the answer (of its words, or of its letters for one word)",
    "copy_input": "the input, unchanged",
    "rambling": "the answer followed by filler (\"..., I hope this helps you\")",
    "repeated": "the answer twice",
}
RAMBLE = {
    "en": ("and that is all I know", "I hope this helps you", "but I am not completely sure",
           "as everyone already knows", "which is a good answer"),
    "vi": ("và đó là tất cả những gì tôi biết", "hy vọng điều này giúp ích cho bạn",
           "nhưng tôi không chắc lắm", "như mọi người đều biết", "đó là một câu trả lời hay"),
}


def _wrong(task: str, input: str, truth: str, rng: random.Random) -> str:
    """A plausible wrong answer of the right type."""
    if task in ("translate_en_vi", "translate_vi_en"):
        return rng.choice([vi if task == "translate_en_vi" else en for en, vi in LEXICON])
    if task in ("reverse_words", "sort_numbers"):
        parts = input.split()
        rng.shuffle(parts)
        return " ".join(parts)
    if task == "uppercase":
        return " ".join(_cap(w) for w in input.split())
    if task == "count_words":
        return str(int(truth) + rng.choice((-1, 1)))
    if task in ("first_word", "last_word", "max_number"):
        return rng.choice(input.split())
    if task == "sentiment":
        for labels in SENTIMENT_LABELS.values():
            if truth in labels:
                return labels[1 - labels.index(truth)]
    if task == "fact_qa":  # another answer to the same kind of question, in the same language
        _, lang, relation = FACT_QUESTIONS[input]
        same_kind = {a for a, l, r in FACT_QUESTIONS.values() if (l, r) == (lang, relation)}
        return rng.choice(sorted(same_kind))
    raise ValueError(f"no wrong-answer rule for task {task!r}")


def _rejected(task: str, input: str, truth: str, lang: str, kind: str, rng: random.Random) -> str | None:
    """A rejected response of ``kind``; None when that kind cannot differ from the truth here."""
    if kind == "wrong":
        candidate = _wrong(task, input, truth, rng)
    elif kind == "truncated":
        words = truth.split()
        if len(words) > 1:
            candidate = " ".join(words[: max(1, len(words) // 2)])
        else:
            candidate = truth[: len(truth) // 2]
    elif kind == "copy_input":
        candidate = input
    elif kind == "rambling":
        candidate = f"{truth}, {rng.choice(RAMBLE[lang])}"
    else:  # repeated
        candidate = f"{truth} {truth}"
    ok = candidate.strip() and _normalise(candidate) != _normalise(truth)
    return candidate if ok else None


def build_preferences() -> list[dict[str, str]]:
    """N_PREFERENCES pairs over the trained tasks and train phrasings, labelled by :func:`judge`."""
    rng = random.Random(f"{SEED}:preferences")
    kinds, weights = zip(*REJECTION_KINDS)
    seen: set[tuple[str, str]] = set()
    n_heldout = int(N_PREFERENCES * PREFERENCE_HELDOUT_FRACTION)
    pairs = []
    while len(pairs) < N_PREFERENCES:
        task = TASKS[len(pairs) % len(TASKS)]
        lang = rng.choice(("en", "vi"))
        instruction = rng.choice(phrasings(task)[lang])
        input = _spec(task).make_input(rng, lang)
        if (instruction, input) in seen:
            continue
        truth = solve(task, input)
        kind = rng.choices(kinds, weights)[0]
        rejected = _rejected(task, input, truth, lang, kind, rng)
        if rejected is None:
            continue
        seen.add((instruction, input))
        # The label comes from the judge, as a human label would come from a person.
        chosen_score = judge(instruction, input, truth, task=task)
        rejected_score = judge(instruction, input, rejected, task=task)
        if not chosen_score > rejected_score:
            raise AssertionError(f"judge does not prefer the truth for {task}: {truth!r} vs {rejected!r}")
        split = "heldout" if len(pairs) >= N_PREFERENCES - n_heldout else "train"
        pairs.append({"prompt": prompt_text(instruction, input), "instruction": instruction, "input": input,
                      "chosen": truth, "rejected": rejected, "task": task, "kind": kind, "split": split})
    return pairs


# ----------------------------------------------------------------------------------------------
# ood.jsonl (§5): things the data never says; any confident answer is made up
# ----------------------------------------------------------------------------------------------

OOD_COUNTRIES = (("Peru", "Pê-ru"), ("Kenya", "Kê-ni-a"), ("Norway", "Na Uy"), ("Mongolia", "Mông Cổ"),
                 ("Brazil", "Bra-xin"), ("Mexico", "Mê-hi-cô"), ("Sweden", "Thụy Điển"),
                 ("Argentina", "Ác-hen-ti-na"))
OOD_EN_WORDS = ("telescope", "volcano", "umbrella", "dragon", "penguin", "piano", "library", "island")
OOD_VI_WORDS = (("cái ô", "umbrella"), ("con rồng", "dragon"), ("thư viện", "library"),
                ("chim cánh cụt", "penguin"))
OOD_THINGS = (("What colour is a flamingo?", "flamingo"), ("How many legs does a crab have?", "crab"),
              ("Con cua có mấy chân?", "con cua"), ("Quả dâu tây có màu gì?", "dâu tây"))


def build_ood() -> list[dict[str, str | None]]:
    """~30 questions phrased like trained tasks, whose answers appear nowhere in the data."""
    out: list[dict[str, str | None]] = []
    for en, vi in OOD_COUNTRIES:
        out.append({"instruction": "Answer the question.", "input": f"What is the capital of {en}?",
                    "task": "ood", "resembles": "fact_qa", "absent": en,
                    "note": f"{en} is not in the fact table; its capital is never mentioned"})
        out.append({"instruction": "Trả lời câu hỏi.", "input": f"Thủ đô của {vi} là gì?",
                    "task": "ood", "resembles": "fact_qa", "absent": vi,
                    "note": f"{vi} ({en}) is not in the fact table; its capital is never mentioned"})
    for word in OOD_EN_WORDS:
        out.append({"instruction": SECTION1_EXAMPLE["instruction"], "input": word, "task": "ood",
                    "resembles": "translate_en_vi", "absent": word,
                    "note": f'"{word}" is not in the lexicon; the data never gives its Vietnamese'})
    for vi, en in OOD_VI_WORDS:
        out.append({"instruction": "Dịch sang tiếng Anh.", "input": vi, "task": "ood",
                    "resembles": "translate_vi_en", "absent": vi,
                    "note": f'"{vi}" ({en}) is not in the lexicon; the data never gives its English'})
    for question, absent in OOD_THINGS:
        instruction = "Answer the question." if question.isascii() else "Trả lời câu hỏi."
        out.append({"instruction": instruction, "input": question, "task": "ood", "resembles": "fact_qa",
                    "absent": absent, "note": f'"{absent}" is not in the fact table'})
    out.append({"instruction": "Answer the question.", "input": "What is the capital of the Moon?",
                "task": "ood", "resembles": "fact_qa", "absent": None,
                "note": "the question has no true answer; the right response is to say so"})
    out.append({"instruction": "Trả lời câu hỏi.", "input": "Thủ đô của mặt trăng là gì?",
                "task": "ood", "resembles": "fact_qa", "absent": None,
                "note": "the question has no true answer; the right response is to say so"})
    return out


# ----------------------------------------------------------------------------------------------
# corpus.txt (§1): what the base model reads. Statements only: never an instruction and its answer.
# ----------------------------------------------------------------------------------------------


class _Cycle:
    """Draws items in shuffled passes, so every lexicon entry and fact is stated about equally often."""

    def __init__(self, items: tuple, rng: random.Random):
        self.items, self.rng, self.queue = list(items), rng, []

    def __call__(self):
        if not self.queue:
            self.queue = self.items[:]
            self.rng.shuffle(self.queue)
        return self.queue.pop()


_EN_NUMBER = {n: en for n, (en, _) in enumerate(LEXICON_BY_CATEGORY["number"], start=1)}
_VI_NUMBER = {n: vi for n, (_, vi) in enumerate(LEXICON_BY_CATEGORY["number"], start=1)}
_FOOD_NP = {"egg": "eggs", "banana": "bananas", "apple": "apples", "orange": "oranges", "mango": "mangoes"}


def _corpus_writers(rng: random.Random) -> dict[str, Callable[[], str]]:
    """One function per kind of document; each returns one line of the corpus."""
    lexicon, capitals = _Cycle(LEXICON, rng), _Cycle(CAPITALS, rng)
    colours, legs = _Cycle(COLOURS_OF, rng), _Cycle(LEGS_OF, rng)
    phrases = _Cycle(LEXICON_BY_CATEGORY["phrase"], rng)
    cat = {k: [p for p in v] for k, v in LEXICON_BY_CATEGORY.items()}
    pick = rng.choice

    def sentences(templates: tuple[str, ...], n: int, draw: Callable[[], dict[str, str]]) -> list[str]:
        return [pick(templates).format(**draw()) for _ in range(n)]

    def entry() -> dict[str, str]:
        en, vi = lexicon()
        return {"en": en, "vi": vi}

    def lexicon_en() -> str:
        intro = pick(("", "Tom is learning Vietnamese.", "Anna keeps a notebook of Vietnamese words.",
                      "Today we learned some new words.", "Learning a new language is fun.",
                      "My friend from Hanoi taught me a few words."))
        body = sentences(('In Vietnamese, {en} is {vi}.', 'The Vietnamese word for {en} is {vi}.',
                          'The word {vi} means {en} in English.',
                          'When people in Vietnam say {vi}, they mean {en}.',
                          'My teacher says that {en} is {vi} in Vietnamese.',
                          'We learned that {vi} is the Vietnamese for {en}.'), rng.randint(2, 3), entry)
        return " ".join(([intro] if intro else []) + body)

    def lexicon_vi() -> str:
        intro = pick(("", "Minh đang học tiếng Anh.", "Hôm nay chúng tôi học từ mới.",
                      "Mai có một quyển sổ ghi từ tiếng Anh.", "Học ngoại ngữ rất vui."))
        body = sentences(('Trong tiếng Anh, {vi} là {en}.',
                          'Từ {en} trong tiếng Anh có nghĩa là {vi}.',
                          'Người Anh nói {en}, còn người Việt nói {vi}.',
                          'Trong tiếng Việt, {en} được nói là {vi}.',
                          'Cô giáo nói rằng {vi} trong tiếng Anh là {en}.'), rng.randint(2, 3), entry)
        return " ".join(([intro] if intro else []) + body)

    def phrase_pair() -> str:
        en, vi = phrases()
        name = pick(("Mai", "Minh", "Tom", "Anna"))
        return pick((f'{name} says {vi} to a friend. It means {en}.',
                     f'When {name} wants to say {en} in Vietnamese, {name} says {vi}.',
                     f'{name} nói {en} bằng tiếng Anh, nghĩa là {vi}.',
                     f'Câu {vi} trong tiếng Anh là {en}. {name} nói câu đó mỗi ngày.'))

    def story_en() -> str:
        def one() -> str:
            a, p, f = pick(cat["animal"])[0], pick(cat["person"])[0], pick(cat["food"])[0]
            return pick((f"The {a} is {pick(cat['adjective'])[0]}.", f"My {p} likes {_FOOD_NP.get(f, f)}.",
                         f"The {a} can {pick(('eat', 'drink', 'sleep', 'run', 'swim', 'play'))}.",
                         f"{pick(('Today', 'Tomorrow', 'Every morning'))}, I "
                         f"{pick(('play', 'read', 'sing', 'swim', 'run', 'eat', 'learn'))} with my {p}.",
                         f"I see a {pick(cat['colour'])[0]} {pick(cat['object'])[0]}.",
                         f"The {pick(cat['nature'])[0]} is {pick(cat['adjective'])[0]}."))
        return " ".join(one() for _ in range(rng.randint(2, 4)))

    def story_vi() -> str:
        def one() -> str:
            a, p, f = pick(cat["animal"])[1], pick(cat["person"])[1], pick(cat["food"])[1]
            return pick((f"{_cap(a)} rất {pick(cat['adjective'])[1]}.", f"{_cap(p)} của tôi thích {f}.",
                         f"{_cap(a)} có thể {pick(('ăn', 'uống', 'ngủ', 'chạy', 'bơi', 'chơi'))}.",
                         f"{pick(('Hôm nay', 'Ngày mai', 'Mỗi buổi sáng'))}, tôi "
                         f"{pick(('chơi', 'đọc sách', 'hát', 'bơi', 'chạy', 'ăn cơm', 'học'))} "
                         f"với {p} của tôi.",
                         f"Tôi thấy một {pick(cat['object'])[1]} {pick(cat['colour'])[1]}.",
                         f"{_cap(pick(cat['nature'])[1])} rất {pick(cat['adjective'])[1]}."))
        return " ".join(one() for _ in range(rng.randint(2, 4)))

    def facts_en() -> str:
        def one() -> str:
            kind = pick(("capital", "capital", "colour", "legs"))
            if kind == "capital":
                c, _, a, _ = capitals()
                return pick((f"{a} is the capital of {c}.", f"The capital of {c} is {a}.",
                             f"{c} is a country, and its capital is {a}.",
                             f"Many people visit {a}, the capital of {c}."))
            if kind == "colour":
                t, _, col, _ = colours()
                return pick((f"{_cap(t)} is {col}.", f"The colour of {t} is {col}."))
            t, _, n = legs()
            return pick((f"{_cap(t)} has {n} legs.", f"{_cap(t)} has {_EN_NUMBER[n]} legs."))
        return " ".join(one() for _ in range(rng.randint(2, 4)))

    def facts_vi() -> str:
        def one() -> str:
            kind = pick(("capital", "capital", "colour", "legs"))
            if kind == "capital":
                _, c, _, a = capitals()
                return pick((f"Thủ đô của {c} là {a}.", f"{a} là thủ đô của {c}.",
                             f"Nhiều người đến thăm {a}, thủ đô của {c}."))
            if kind == "colour":
                _, t, _, col = colours()
                return pick((f"{_cap(t)} có {col}.", f"Màu của {t} là {col}."))
            _, t, n = legs()
            return pick((f"{_cap(t)} có {n} chân.", f"{_cap(t)} có {_VI_NUMBER[n]} chân."))
        return " ".join(one() for _ in range(rng.randint(2, 4)))

    def review(lang: str) -> str:
        pos_label = SENTIMENT_LABELS[lang][0]
        sentence, label = pick([(s, y) for s, y in SENTIMENT_SENTENCES.items()
                                if (y in SENTIMENT_LABELS["en"]) == (lang == "en")])
        follow = {("en", True): ("I would go again.", "Everyone was happy.", "My friends liked it too."),
                  ("en", False): ("I will not go again.", "It made me sad.", "What a waste of time."),
                  ("vi", True): ("Tôi sẽ quay lại.", "Mọi người đều vui.", "Bạn bè tôi cũng thích."),
                  ("vi", False): ("Tôi sẽ không quay lại.", "Nó làm tôi buồn.", "Thật phí thời gian.")}
        doc = [sentence + ".", pick(follow[(lang, label == pos_label)])]
        if rng.random() < 0.4:
            pos, neg = SENTIMENT_WORDS[lang]
            p1, p2 = rng.sample(pos, 2)
            doc.append(pick((f'Words like {p1} and {p2} are positive words.',
                             f'The word {pick(neg)} has a negative meaning.')) if lang == "en" else
                       pick((f'Những từ như {p1} và {p2} mang ý nghĩa tích cực.',
                             f'Từ {pick(neg)} mang ý nghĩa tiêu cực.')))
        return " ".join(doc)

    def numbers(lang: str) -> str:
        # Lists are written as the tasks write them ("7 3 9"), so the base model has seen the format.
        xs = rng.sample(range(1, 10), rng.randint(3, 4))
        listed, ordered, biggest = " ".join(map(str, xs)), " ".join(map(str, sorted(xs))), max(xs)
        a, b = rng.sample(range(1, 31), 2)
        a, b = max(a, b), min(a, b)
        n = rng.randint(1, 10)
        if lang == "en":
            options = (f"{a} is bigger than {b}.", f"{b} is smaller than {a}.",
                       f'From small to big, the list {listed} is {ordered}.',
                       f'The biggest number in the list {listed} is {biggest}.',
                       f'The smallest number in the list {listed} is {min(xs)}.',
                       f"{_cap(_EN_NUMBER[n])} is written {n}.", "Counting up: one, two, three, four, five.")
        else:
            options = (f"{a} lớn hơn {b}.", f"{b} nhỏ hơn {a}.",
                       f'Từ nhỏ đến lớn, dãy số {listed} là {ordered}.',
                       f'Số lớn nhất trong dãy số {listed} là {biggest}.',
                       f'Số nhỏ nhất trong dãy số {listed} là {min(xs)}.',
                       f"Số {_VI_NUMBER[n]} viết là {n}.", "Đếm: một, hai, ba, bốn, năm.")
        return " ".join(rng.sample(options, 3))

    def letters() -> str:
        w = " ".join(rng.sample(WORDS, rng.randint(1, 2)))
        vi = pick(LEXICON)[1]
        return " ".join(rng.sample((f'In capital letters, {w} is written {w.upper()}.',
                                    f'Written in small letters, {w.upper()} becomes {w}.',
                                    f'The sign said {w.upper()} in big letters.',
                                    f'Chữ {vi} viết hoa là {vi.upper()}.',
                                    f'Viết thường, {vi.upper()} là {vi}.'), 2))

    def words(lang: str) -> str:
        # The word manipulations of the tasks, stated (never asked for): the base model learns to
        # copy words from a phrase, which instruction tuning then only has to point at. Words are
        # never quoted: after a quote mark a word is another token ('"dog' is '▁"' 'dog', not '▁dog').
        ws = rng.sample(WORDS, rng.randint(2, 6))
        phrase, w = " ".join(ws), pick(ws)
        rev = " ".join(reversed(ws[:3]))
        if lang == "en":
            options = (f'The phrase {phrase} has {_EN_NUMBER[len(ws)]} words.',
                       f'In the phrase {phrase}, the first word is {ws[0]}.',
                       f'In the phrase {phrase}, the last word is {ws[-1]}.',
                       f'In the phrase {phrase}, the second word is {ws[1]}.',
                       f'Read backwards, {" ".join(ws[:3])} becomes {rev}.',
                       f'A child said {w} {w}, saying the word {w} twice.')
        else:
            options = (f'Cụm từ {phrase} có {_VI_NUMBER[len(ws)]} từ.',
                       f'Trong cụm từ {phrase}, từ đầu tiên là {ws[0]}.',
                       f'Trong cụm từ {phrase}, từ cuối cùng là {ws[-1]}.',
                       f'Trong cụm từ {phrase}, từ thứ hai là {ws[1]}.',
                       f'Đọc ngược lại, {" ".join(ws[:3])} thành {rev}.',
                       f'Em bé nói {w} {w}, nói từ {w} hai lần.')
        return " ".join(rng.sample(options, 3))

    return {"lexicon_en": lexicon_en, "lexicon_vi": lexicon_vi, "phrase_pair": phrase_pair,
            "story_en": story_en, "story_vi": story_vi, "facts_en": facts_en, "facts_vi": facts_vi,
            "review_en": lambda: review("en"), "review_vi": lambda: review("vi"),
            "numbers_en": lambda: numbers("en"), "numbers_vi": lambda: numbers("vi"),
            "letters": letters, "words_en": lambda: words("en"), "words_vi": lambda: words("vi")}


# Share of each kind of document in the corpus.
# A third of the documents state word, letter and number manipulations: copying from context is
# what a small model learns slowest, so the base model should already know how before SFT.
CORPUS_MIX: dict[str, float] = {
    "lexicon_en": 0.12, "lexicon_vi": 0.10, "phrase_pair": 0.04, "story_en": 0.05, "story_vi": 0.05,
    "facts_en": 0.08, "facts_vi": 0.08, "review_en": 0.06, "review_vi": 0.06, "numbers_en": 0.06,
    "numbers_vi": 0.05, "letters": 0.09, "words_en": 0.09, "words_vi": 0.07,
}


def build_corpus() -> list[str]:
    """CORPUS_DOCS documents, one per line, drawn from CORPUS_MIX."""
    rng = random.Random(f"{SEED}:corpus")
    writers = _corpus_writers(rng)
    kinds, weights = zip(*CORPUS_MIX.items())
    return [writers[rng.choices(kinds, weights)[0]]() for _ in range(CORPUS_DOCS)]


# ----------------------------------------------------------------------------------------------
# README.md, writing, reading, and the `minift data` command
# ----------------------------------------------------------------------------------------------


def _count(records: list[dict], **where: str) -> int:
    return sum(all(r[k] == v for k, v in where.items()) for r in records)


def build_readme(corpus: list[str], instructions: list[dict], ood: list[dict],
                 preferences: list[dict]) -> str:
    """data/samples/README.md: what each file is, its fields and counts, and how it was made."""
    ex = {r["task"]: r for r in reversed(instructions)}  # first example of each task
    task_rows = []
    for task in (*TASKS, *HELDOUT_TASKS):
        spec, r = TASK_SPECS[task], ex[task]
        kind = "trained" if task in TASKS else "held out"
        example = f"`{r['input']}` → `{r['output']}`"
        task_rows.append(f"| `{task}` | {kind} | {spec.description} | {spec.en[0]} / {spec.vi[0]} | {example} |")
    split_rows = [f"| `{s}` | {_count(instructions, split=s)} |" for s in SPLITS]
    kind_rows = [f"| `{k}` | {_count(preferences, kind=k)} | {REJECTION_DESCRIPTIONS[k]} |"
                 for k, _ in REJECTION_KINDS]
    longer = sum(len(p["chosen"]) > len(p["rejected"]) for p in preferences)
    shorter = sum(len(p["chosen"]) < len(p["rejected"]) for p in preferences)
    n_phr = len(TASK_SPECS[TASKS[0]].en) + len(TASK_SPECS[TASKS[0]].heldout_en)

    def longest(field: str) -> int:
        return max(len(r[field].split()) for r in instructions)

    return f"""# minift course data

Written by `python -m minift data` (`minift.coursedata.generate`), deterministically: fixed seeds,
no network, pure Python. Do not edit these files by hand; change `minift/coursedata.py` and
regenerate. `tests/test_coursedata.py` regenerates them and compares bytes. `tokenizer.model` is
not written by this command (see `minift tokenizer`).

License: Apache-2.0, like minift. Every sentence was written by minift's generator from the
small word lists and fact table in `minift/coursedata.py`; nothing is copied from another dataset.

## The closed world

* a bilingual lexicon of {len(LEXICON)} English–Vietnamese entries (animals, food, people, nature,
  objects, colours, adjectives, verbs, numbers one–ten, times, {len(LEXICON_BY_CATEGORY['phrase'])} short phrases),
  one-to-one in both directions;
* a fact table of {N_FACTS} facts: {len(CAPITALS)} capitals, {len(COLOURS_OF)} colours, {len(LEGS_OF)} leg counts;
* {len(SENTIMENT_SENTENCES)} short reviews (English and Vietnamese) built from
  positive and negative adjectives.

Inputs are 1–6 words, 3–4 numbers from 1 to 9, a review or a question (at most {longest('input')}
words); outputs are at most {longest('output')} words; instructions at most {longest('instruction')} words
(Vietnamese words are syllables). This is what lets a model of a few million parameters learn the
tasks on a CPU.

## Files

| file | rows | what it is |
|---|---|---|
| `corpus.txt` | {len(corpus)} lines | raw text to pretrain the base model (§1): one document (2–4 sentences) per line, English and Vietnamese. It states the lexicon, the facts, sentiment words, numbers and letter case in plain sentences, but contains no instruction/response format and none of the instruction phrasings: a model trained on it *continues* "Hãy dịch câu này sang tiếng Việt" instead of translating. |
| `instructions.jsonl` | {len(instructions)} | instruction data (§2.1), fields below |
| `preferences.jsonl` | {len(preferences)} | preference pairs for the reward model (§4) |
| `ood.jsonl` | {len(ood)} | out-of-distribution questions for the hallucination lesson (§5) |

All text is UTF-8, Vietnamese in NFC; JSON lines are objects with the fields below, in this order.

### instructions.jsonl

`instruction` (Câu lệnh: what to do), `input` (Ngữ cảnh bổ trợ: the text to work on; never empty
here), `output` (Phản hồi mong đợi: the target response, equal to `solve(task, input)`), `task`,
`split`.

| split | rows |
|---|---|
{chr(10).join(split_rows)}

* `train`: the {len(TASKS)} trained tasks, {min(TRAIN_EXAMPLES.values())}–{max(TRAIN_EXAMPLES.values())} examples each
  (more for the tasks that copy from the input, which a small model learns slowest), 8 English
  and 8 Vietnamese phrasings per task (shuffled).
* `heldout_phrasing`: the same tasks, {HELDOUT_PHRASING_PER_TASK} examples each, asked with 2 English
  and 2 Vietnamese phrasings never used in `train` (do instructions generalise to new wordings?).
  They are new sentences built mostly from the key words of the trained phrasings ("first",
  "reverse", "lớn nhất"): a model of a few million parameters that has read only this data
  cannot know a synonym it has never seen.
* `heldout_task`: {len(HELDOUT_TASKS)} task families never trained on, {HELDOUT_TASK_EXAMPLES} examples
  each (the zero-shot claim of §1). Each is a near neighbour of a trained task and its operation
  is stated in the corpus. Expect little at this scale: FLAN (Wei et al. 2022) found that
  instruction tuning helps on unseen tasks only for models of tens of billions of parameters,
  and hurts models of 8B and smaller.

Each trained task has {n_phr} English and {n_phr} Vietnamese phrasings in all
(`minift.coursedata.phrasings(task)` and `phrasings(task, heldout=True)`). Sentiment and fact
questions are asked in the language of the phrasing and answered in it; translation inputs are in
the source language; the word and number tasks use English words and digits.

| task | kind | what | an English / a Vietnamese phrasing | example |
|---|---|---|---|---|
{chr(10).join(task_rows)}

`sentiment` is the "traditional fine-tuning" task of §2: one task, one label set.
The article's example is in the data: `{SECTION1_EXAMPLE['instruction']}` with input
`{SECTION1_EXAMPLE['input']}` → `{SECTION1_EXAMPLE['output']}` (`minift.coursedata.SECTION1_EXAMPLE`).

### preferences.jsonl

`prompt` (instruction and input joined by a newline: `prompt_text(instruction, input)`),
`instruction`, `input`, `chosen`, `rejected`, `task`, `kind` (how the rejected response is wrong),
`split` (`train`: {_count(preferences, split='train')}, `heldout`: {_count(preferences, split='heldout')}).
Prompts use the train phrasings of the trained tasks; no (instruction, input) repeats.

`chosen` is the true answer. `rejected` is a plausible mistake:

| kind | rows | rejected response |
|---|---|---|
{chr(10).join(kind_rows)}

The pairs are labelled by a programmatic judge, `minift.coursedata.judge(instruction, input,
response)`, which is also the *gold* reward used to score PPO samples:

    R*(y) = 1[y = y*] + 0.5 · 1[y ≠ y*] · F1(y, y*) − {LENGTH_PENALTY} · max(0, |y| − |y*|),  clipped to [−1, 1]

where `y* = solve(task, input)`, F1 is word overlap and |y| counts words. The judge scores the
chosen response above the rejected one in every pair. By design the chosen response is longer
(in characters) than the rejected one in {longer} pairs and shorter in only {shorter}: a reward
model can learn the spurious cue "longer is better", which the gold judge's length penalty
punishes. Reward over-optimisation is the learned reward rising under PPO while this gold
reward falls.

### ood.jsonl

`instruction` (a trained phrasing), `input`, `task` (`"ood"`), `resembles` (the trained task it
looks like), `absent` (the key term the data never contains; null when the question has no
answer at all), `note`. Capitals of countries outside the fact table, words outside the lexicon,
colours and leg counts of things outside the table: whatever the model answers is made up (§5).
"""


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def generate(out_dir: str | Path = SAMPLES_DIR) -> dict[str, Path]:
    """Write the course data files into ``out_dir`` (default data/samples/); returns name -> path.

    Deterministic: the same bytes on every run and machine. ``tokenizer.model`` is left alone.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus, instructions = build_corpus(), build_instructions()
    ood, preferences = build_ood(), build_preferences()
    texts = {
        CORPUS_FILE: "".join(line + "\n" for line in corpus),
        INSTRUCTIONS_FILE: _jsonl(instructions),
        OOD_FILE: _jsonl(ood),
        PREFERENCES_FILE: _jsonl(preferences),
        README_FILE: build_readme(corpus, instructions, ood, preferences),
    }
    paths = {}
    for name, text in texts.items():
        paths[name] = out / name
        paths[name].write_bytes(unicodedata.normalize("NFC", text).encode("utf-8"))
    return paths


def read_jsonl(path: str | Path, fields: tuple[str, ...] = ()) -> list[dict]:
    """Records of a JSON-lines file; errors name the file and line, and any missing field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; run `python -m minift data` to write the course data")
    records = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{i}: not valid JSON ({err.msg})") from None
        missing = [f for f in fields if f not in record]
        if missing:
            raise ValueError(f"{path}:{i}: missing field(s) {', '.join(missing)}")
        records.append(record)
    return records


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR,
                        help=f"folder to write the course data into (default: {SAMPLES_DIR})")


def run(args: argparse.Namespace) -> int:
    for name, path in generate(args.out).items():
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0
