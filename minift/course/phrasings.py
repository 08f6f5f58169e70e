"""How people ask for each course task: instruction wordings built compositionally (§2, FLAN/T0).

FLAN's lesson (Wei et al. 2022) is that instruction tuning teaches a model to follow *instructions*,
not templates, only when each task comes in many wordings. Each task here has a few dozen *cores*
(the task said in a few words, in three forms: an imperative "reverse the order of the words", a
question "which word comes first", a terse label "ascending order") and each core is set in
*frames* (politeness, question tags, a "Task:" label, with or without final punctuation): about a
hundred wordings per task and language, of which ``WORDINGS_PER_LANGUAGE`` are drawn for training.

Held-out wordings come from separate held-out cores and are kept only if they are genuinely new:
word-set Jaccard similarity below ``MAX_JACCARD`` to *every* trained wording of their task (new word
choices, not one-word edits). ``data/samples/README.md`` lists how many each task has.

Deliberate: the frames are shared by both splits (a held-out wording differs by its core, the
words that carry the task), and the English wordings are ASCII, the Vietnamese ones not.
"""

from __future__ import annotations

import random
import re
import unicodedata

from minift.course.world import SEED

WORDINGS_PER_LANGUAGE = 60  # trained wordings per task and language
HELDOUT_PER_LANGUAGE = 6  # held-out wordings per task and language
MAX_JACCARD = 0.5  # a held-out wording shares less than half its word set with every trained one
# Trained whatever the draw: the article's own instruction (§1).
ALWAYS_TRAINED = {("translate_en_vi", "vi"): ("Hãy dịch câu này sang tiếng Việt",)}

# Frames: {v}/{V} an imperative core (lower/capitalised), {q}/{Q} a question core, {n}/{N} a label.
FRAMES = {
    "en": {
        "v": ("{V}.", "{V}", "Please {v}.", "Please {v}", "Can you {v}?", "Could you {v}, please?",
              "I need you to {v}.", "{V}, please.", "Kindly {v}.", "Your task: {v}.", "Help me {v}.",
              "I want you to {v}.", "Just {v}.", "Now {v}."),
        "q": ("{Q}?", "{Q}", "Tell me: {q}?", "Question: {q}?", "Quick question, {q}?"),
        "n": ("{N}.", "{N}", "{N}:", "Task: {n}.", "{N}, please."),
    },
    "vi": {
        "v": ("{V}.", "{V}", "Hãy {v}.", "Hãy {v}", "Bạn hãy {v}.", "Vui lòng {v}.", "Làm ơn {v}.",
              "{V} giúp tôi.", "{V} giúp mình nhé.", "Nhờ bạn {v}.", "Yêu cầu: {v}.", "Bạn có thể {v} không?"),
        "q": ("{Q}?", "{Q}", "Cho tôi hỏi, {q}?", "Bạn cho biết {q}?"),
        "n": ("{N}.", "{N}", "{N}:", "Nhiệm vụ: {n}."),
    },
}

# task -> language -> ("train" | "heldout") -> form ("v", "q", "n") -> cores
CORES: dict[str, dict[str, dict[str, dict[str, tuple[str, ...]]]]] = {
    "translate_en_vi": {
        "en": {"train": {
            "v": ("translate this into Vietnamese", "translate the following English text to Vietnamese",
                  "translate from English to Vietnamese", "give the Vietnamese translation", "write this in Vietnamese",
                  "say this in Vietnamese", "put this into Vietnamese", "give the Vietnamese word for this",
                  "translate this English phrase into Vietnamese", "turn this into Vietnamese"),
            "q": ("what is this in Vietnamese", "how do you say this in Vietnamese", "what is the Vietnamese for this",
                  "what does this mean in Vietnamese", "what is the Vietnamese translation"),
            "n": ("English to Vietnamese", "Vietnamese translation", "translate to Vietnamese", "into Vietnamese")},
            "heldout": {"v": ("render this English phrase in Vietnamese", "convert the text below into the language of Vietnam"),
                        "q": ("how would a speaker from Hanoi express it",), "n": ("EN to VI",)}},
        "vi": {"train": {
            "v": ("dịch câu này sang tiếng Việt", "dịch sang tiếng Việt", "dịch câu sau từ tiếng Anh sang tiếng Việt",
                  "viết câu này bằng tiếng Việt", "chuyển câu tiếng Anh này sang tiếng Việt", "nói câu này bằng tiếng Việt",
                  "dịch từ này ra tiếng Việt", "chuyển sang tiếng Việt"),
            "q": ("câu này trong tiếng Việt là gì", "bản dịch tiếng Việt của câu này là gì", "tiếng Việt nói thế nào",
                  "từ này tiếng Việt là gì"),
            "n": ("tiếng Anh sang tiếng Việt", "bản dịch tiếng Việt", "dịch Anh - Việt")},
            "heldout": {"v": ("cho biết nghĩa tiếng Việt", "chuyển ngữ đoạn văn Anh ngữ này"),
                        "q": ("người Hà Nội diễn đạt ý đó ra sao",), "n": ("Anh → Việt",)}},
    },
    "translate_vi_en": {
        "en": {"train": {
            "v": ("translate this into English", "translate the following Vietnamese text to English",
                  "translate from Vietnamese to English", "give the English translation", "write this in English",
                  "say this in English", "put this into English", "give the English word for this",
                  "translate this Vietnamese phrase into English", "turn this into English"),
            "q": ("what is this in English", "how do you say this in English", "what is the English for this",
                  "what does this mean in English", "what is the English translation"),
            "n": ("Vietnamese to English", "English translation", "translate to English", "into English")},
            "heldout": {"v": ("render this Vietnamese phrase in English", "convert the text below into the language of London"),
                        "q": ("how would a speaker from Boston express it",), "n": ("VI to EN",)}},
        "vi": {"train": {
            "v": ("dịch câu này sang tiếng Anh", "dịch sang tiếng Anh", "dịch câu sau từ tiếng Việt sang tiếng Anh",
                  "viết câu này bằng tiếng Anh", "chuyển câu tiếng Việt này sang tiếng Anh", "nói câu này bằng tiếng Anh",
                  "dịch từ này ra tiếng Anh", "chuyển sang tiếng Anh"),
            "q": ("câu này trong tiếng Anh là gì", "bản dịch tiếng Anh của câu này là gì", "tiếng Anh nói thế nào",
                  "từ này tiếng Anh là gì"),
            "n": ("tiếng Việt sang tiếng Anh", "bản dịch tiếng Anh", "dịch Việt - Anh")},
            "heldout": {"v": ("cho biết nghĩa tiếng Anh", "chuyển ngữ đoạn văn Việt ngữ này sang Anh ngữ"),
                        "q": ("người London diễn đạt ý đó ra sao",), "n": ("Việt → Anh",)}},
    },
    "reverse_words": {
        "en": {"train": {
            "v": ("reverse the order of the words", "write the words in reverse order", "put these words backwards",
                  "list the words from last to first", "reverse the word order", "read the words backwards",
                  "flip the order of these words", "rewrite the words, last word first", "reverse these words",
                  "write the words backwards", "give the words in the opposite order"),
            "q": ("what are these words in reverse order", "what is the reversed word order"),
            "n": ("reverse word order", "words in reverse", "reversed order", "backwards")},
            "heldout": {"v": ("output the items from the end to the start", "invert the sequence of terms"),
                        "q": ("how does the text look read right to left, token by token",), "n": ("end-to-start",)}},
        "vi": {"train": {
            "v": ("đảo ngược thứ tự các từ", "viết các từ theo thứ tự ngược lại", "sắp xếp các từ theo thứ tự ngược",
                  "liệt kê các từ từ cuối lên đầu", "đảo thứ tự các từ trong câu này", "đọc các từ theo chiều ngược lại",
                  "lật ngược thứ tự của các từ này", "viết lại các từ, từ cuối cùng đứng đầu", "viết ngược các từ"),
            "q": ("các từ này viết ngược lại là gì", "thứ tự ngược của các từ là gì"),
            "n": ("đảo ngược thứ tự từ", "thứ tự ngược", "viết ngược")},
            "heldout": {"v": ("trình bày dãy chữ bắt đầu từ chữ sau chót", "đổi chiều danh sách chữ"),
                        "q": ("nếu đọc từ phải qua trái thì được gì",), "n": ("cuối → đầu",)}},
    },
    "uppercase": {
        "en": {"train": {
            "v": ("convert to upper case", "write this in capital letters", "make every letter uppercase",
                  "rewrite the text in all caps", "change these words to upper case", "capitalize every letter",
                  "turn this into uppercase", "write the words in block capitals", "put this in capitals",
                  "write it in uppercase", "use only capital letters"),
            "q": ("what is this in capital letters", "how is this written in all caps"),
            "n": ("uppercase", "all caps", "upper case", "capital letters")},
            "heldout": {"v": ("print each character as a majuscule", "switch every letter to its large form"),
                        "q": ("how would this look if shouted",), "n": ("CAPS LOCK on",)}},
        "vi": {"train": {
            "v": ("chuyển thành chữ in hoa", "viết lại bằng chữ hoa", "viết hoa tất cả các chữ cái",
                  "viết hoa toàn bộ văn bản này", "đổi các từ này sang chữ in hoa", "viết đoạn này bằng chữ in hoa",
                  "in hoa mọi chữ cái", "chuyển văn bản sang chữ viết hoa", "viết in hoa"),
            "q": ("văn bản này viết hoa thì thế nào", "chữ in hoa của từ này là gì"),
            "n": ("chữ in hoa", "viết hoa toàn bộ", "in hoa")},
            "heldout": {"v": ("để mọi ký tự ở dạng lớn", "đổi sang kiểu chữ to"),
                        "q": ("khi bật phím Caps Lock thì gõ ra sao",), "n": ("ký tự lớn",)}},
    },
    "count_words": {
        "en": {"train": {
            "v": ("count the words", "give the number of words", "count how many words are in this text",
                  "tell me the number of words", "count the words in the input", "give the word count",
                  "count these words"),
            "q": ("how many words are there", "how many words does this text have", "what is the word count",
                  "how many words are in this"),
            "n": ("word count", "number of words", "count words")},
            "heldout": {"v": ("tally up the terms", "determine the length of this line measured in tokens"),
                        "q": ("what total do you get when you tally each term",), "n": ("term tally",)}},
        "vi": {"train": {
            "v": ("đếm số từ", "cho biết số lượng từ", "đếm số từ trong văn bản này", "đếm các từ trong câu sau",
                  "đếm xem có bao nhiêu từ"),
            "q": ("có bao nhiêu từ", "văn bản này có bao nhiêu từ", "số từ là bao nhiêu", "đoạn này gồm mấy từ",
                  "câu này có mấy từ"),
            "n": ("số từ", "đếm từ", "số lượng từ")},
            "heldout": {"v": ("tính tổng cộng các chữ", "kiểm đếm độ dài tính bằng chữ"),
                        "q": ("dòng trên dài tất cả mấy chữ",), "n": ("tổng số chữ",)}},
    },
    "first_word": {
        "en": {"train": {
            "v": ("give the first word", "return only the first word", "write the first word of the text",
                  "tell me the first word", "copy the first word", "output the word at the start",
                  "give me the word that comes first", "write only the first word"),
            "q": ("what is the first word", "which word comes first", "which word is at the start"),
            "n": ("first word", "the first word only", "word at the start")},
            "heldout": {"v": ("name the opening term", "pick out the initial token"),
                        "q": ("what does this line begin with",), "n": ("opening term",)}},
        "vi": {"train": {
            "v": ("cho biết từ đầu tiên", "chỉ viết từ đầu tiên", "viết từ đầu tiên của câu", "chép lại từ đầu tiên",
                  "đưa ra từ ở đầu câu", "viết từ đứng đầu"),
            "q": ("từ đầu tiên là gì", "từ nào đứng đầu", "từ đầu tiên của câu này là gì", "từ nào ở đầu câu"),
            "n": ("từ đầu tiên", "từ đứng đầu")},
            "heldout": {"v": ("nêu chữ khởi đầu", "trích ra chữ mở màn"),
                        "q": ("dòng trên mở đầu bằng chữ nào",), "n": ("chữ khởi đầu",)}},
    },
    "last_word": {
        "en": {"train": {
            "v": ("give the last word", "return only the last word", "write the last word of the text",
                  "tell me the last word", "copy the last word", "output the word at the end", "give me the final word",
                  "write only the last word"),
            "q": ("what is the last word", "which word comes last", "which word is at the end", "what is the final word"),
            "n": ("last word", "final word", "word at the end")},
            "heldout": {"v": ("name the closing term", "pick out the trailing token"),
                        "q": ("what does this line finish with",), "n": ("closing term",)}},
        "vi": {"train": {
            "v": ("cho biết từ cuối cùng", "chỉ viết từ cuối cùng", "viết từ cuối cùng của câu", "chép lại từ cuối cùng",
                  "đưa ra từ ở cuối câu", "viết từ đứng cuối"),
            "q": ("từ cuối cùng là gì", "từ nào đứng cuối", "từ cuối cùng của câu này là gì", "từ nào ở cuối câu"),
            "n": ("từ cuối cùng", "từ đứng cuối", "từ cuối")},
            "heldout": {"v": ("nêu chữ sau chót", "trích ra chữ kết thúc"),
                        "q": ("dòng trên khép lại bằng chữ nào",), "n": ("chữ sau chót",)}},
    },
    "sort_numbers": {
        "en": {"train": {
            "v": ("sort these numbers from smallest to largest", "put the numbers in ascending order",
                  "arrange the numbers from low to high", "order these numbers, smallest first",
                  "sort the numbers in increasing order", "list the numbers from small to big",
                  "rewrite the numbers in ascending order", "sort the list of numbers", "sort ascending",
                  "order the numbers"),
            "q": ("what are these numbers in ascending order", "what is the sorted list"),
            "n": ("ascending order", "sorted", "sort ascending", "numbers sorted low to high")},
            "heldout": {"v": ("rank these values, lowest first", "give the digits ordered upward"),
                        "q": ("how do the values line up going upward",), "n": ("low-to-high ranking",)}},
        "vi": {"train": {
            "v": ("sắp xếp các số từ bé đến lớn", "xếp các số theo thứ tự tăng dần", "sắp xếp dãy số tăng dần",
                  "xếp các số này từ nhỏ đến lớn", "viết các số theo thứ tự tăng dần", "sắp xếp các số, số nhỏ nhất trước",
                  "liệt kê các số từ nhỏ đến lớn", "xếp lại dãy số sau theo thứ tự tăng"),
            "q": ("dãy số này sắp xếp tăng dần là gì",),
            "n": ("thứ tự tăng dần", "sắp xếp tăng dần", "xếp từ bé đến lớn")},
            "heldout": {"v": ("cho các giá trị đi từ thấp lên cao", "trình bày dãy theo chiều đi lên"),
                        "q": ("thấp trước cao sau thì thành ra sao",), "n": ("thấp → cao",)}},
    },
    "max_number": {
        "en": {"train": {
            "v": ("find the biggest number", "give the maximum of these numbers", "return the largest number in the list",
                  "tell me the biggest number", "pick the highest number", "give the largest number", "find the maximum"),
            "q": ("what is the largest number", "which number is the largest", "what is the maximum",
                  "which number is biggest", "what is the highest number here"),
            "n": ("maximum", "largest number", "max", "biggest number")},
            "heldout": {"v": ("name the greatest value", "select the top value"),
                        "q": ("which value tops this list",), "n": ("greatest value",)}},
        "vi": {"train": {
            "v": ("tìm số lớn nhất", "cho biết giá trị lớn nhất", "chọn số lớn nhất trong dãy", "đưa ra số lớn nhất",
                  "tìm giá trị lớn nhất"),
            "q": ("số lớn nhất là số nào", "số nào lớn nhất", "số lớn nhất trong dãy này là gì",
                  "giá trị lớn nhất là bao nhiêu"),
            "n": ("số lớn nhất", "giá trị lớn nhất", "số to nhất")},
            "heldout": {"v": ("chọn ra con số cao hơn cả", "nêu giá trị đứng đầu về độ lớn"),
                        "q": ("con số nào vượt trội hơn tất cả",), "n": ("đỉnh của dãy",)}},
    },
    "sentiment": {
        "en": {"train": {
            "v": ("classify the sentiment", "label the sentiment as positive or negative", "decide if this is positive or negative",
                  "tell me the sentiment of the sentence", "give the sentiment", "classify this review"),
            "q": ("is this sentence positive or negative", "what is the sentiment of this text",
                  "is the feeling here positive or negative", "does this review sound positive or negative",
                  "is this review positive or negative"),
            "n": ("sentiment", "positive or negative", "sentiment label")},
            "heldout": {"v": ("judge whether the tone is favourable or not", "rate the mood of the writer"),
                        "q": ("was the writer pleased or unhappy",), "n": ("tone check",)}},
        "vi": {"train": {
            "v": ("phân loại cảm xúc của câu", "gán nhãn cảm xúc: tích cực hoặc tiêu cực",
                  "cho biết câu này tích cực hay tiêu cực", "xác định cảm xúc của câu sau", "phân loại nhận xét này"),
            "q": ("câu này tích cực hay tiêu cực", "cảm xúc của văn bản này là gì", "cảm xúc ở đây tích cực hay tiêu cực",
                  "nhận xét này tích cực hay tiêu cực"),
            "n": ("cảm xúc", "tích cực hay tiêu cực", "phân loại cảm xúc")},
            "heldout": {"v": ("đánh giá giọng điệu người viết", "nhận định thái độ"),
                        "q": ("người viết hài lòng hay không hài lòng",), "n": ("giọng điệu",)}},
    },
    "fact_qa": {
        "en": {"train": {
            "v": ("answer the question", "answer this question briefly", "give a short answer", "reply with just the answer",
                  "answer the following question", "give the answer in a few words", "respond to the question", "answer it"),
            "q": ("what is the answer", "can you answer this", "do you know the answer"),
            "n": ("short answer", "answer", "quiz question")},
            "heldout": {"v": ("provide the correct reply to this", "solve this trivia item"),
                        "q": ("what would a well-read person say here",), "n": ("trivia",)}},
        "vi": {"train": {
            "v": ("trả lời câu hỏi", "trả lời ngắn gọn câu hỏi này", "đưa ra câu trả lời ngắn", "chỉ ghi câu trả lời",
                  "trả lời câu hỏi sau", "trả lời bằng vài từ", "trả lời câu hỏi này"),
            "q": ("câu trả lời là gì", "bạn biết câu trả lời không"),
            "n": ("trả lời ngắn", "câu trả lời", "đáp án")},
            "heldout": {"v": ("cho biết đáp án đúng", "giải câu đố sau"),
                        "q": ("người hiểu biết sẽ nói gì",), "n": ("đố vui",)}},
    },
}


def word_set(wording: str) -> frozenset[str]:
    """The set of words of a wording: NFC, case-folded, punctuation dropped (for Jaccard similarity)."""
    text = unicodedata.normalize("NFC", wording).casefold()
    return frozenset(re.findall(r"[^\W_]+", text))


def jaccard(a: str, b: str) -> float:
    """Word-set Jaccard similarity |A ∩ B| / |A ∪ B| of two wordings (1 = the same words)."""
    wa, wb = word_set(a), word_set(b)
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0


def _frame(frame: str, core: str) -> str:
    capitalised = core[:1].upper() + core[1:]
    return frame.format(v=core, V=capitalised, q=core, Q=capitalised, n=core, N=capitalised)


def _by_core(task: str, lang: str, split: str) -> list[list[str]]:
    """For each core of one task, language and split (in order), its wordings: every frame of its form."""
    return [[_frame(frame, core) for frame in FRAMES[lang][form]]
            for form, cores in CORES[task][lang][split].items() for core in cores]


def build_wordings(task: str) -> dict[str, tuple[str, ...]]:
    """``{"en", "vi", "heldout_en", "heldout_vi"}`` wordings of ``task`` (deterministic).

    Trained: ``WORDINGS_PER_LANGUAGE`` drawn from all frame x core combinations, every core used at
    least once. Held out: the held-out cores' combinations that are genuinely new (Jaccard below
    ``MAX_JACCARD`` to every trained wording), ``HELDOUT_PER_LANGUAGE`` of them, round-robin over
    the held-out cores.
    """
    result: dict[str, tuple[str, ...]] = {}
    for lang in ("en", "vi"):
        rng = random.Random(f"{SEED}:wordings:{task}:{lang}")
        groups = [list(dict.fromkeys(g)) for g in _by_core(task, lang, "train")]
        for group in groups:
            rng.shuffle(group)
        first = [*ALWAYS_TRAINED.get((task, lang), ()), *(group[0] for group in groups)]  # every core once
        rest = [w for group in groups for w in group[1:]]
        rng.shuffle(rest)
        trained = list(dict.fromkeys(first + rest))[:WORDINGS_PER_LANGUAGE]
        heldout_groups = []
        for group in _by_core(task, lang, "heldout"):
            new = [w for w in dict.fromkeys(group) if max(jaccard(w, t) for t in trained) < MAX_JACCARD]
            rng.shuffle(new)
            heldout_groups.append(new)
        heldout: list[str] = []
        while len(heldout) < HELDOUT_PER_LANGUAGE and any(heldout_groups):
            for group in heldout_groups:
                if group and len(heldout) < HELDOUT_PER_LANGUAGE:
                    heldout.append(group.pop(0))
        result[lang], result[f"heldout_{lang}"] = tuple(trained), tuple(heldout)
    return result


WORDINGS: dict[str, dict[str, tuple[str, ...]]] = {task: build_wordings(task) for task in CORES}
