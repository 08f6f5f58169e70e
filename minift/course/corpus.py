"""corpus.txt (§1): what the base model reads. Statements only, never an instruction and its answer.

The base model (mô hình nền tảng) of §1 learns the lexicon, the facts, sentiment words, numbers and
letter case from ordinary sentences in English and Vietnamese, so that instruction tuning has
knowledge to unlock; and because no document shows an instruction followed by its answer, the
base model *continues* "Hãy dịch câu này sang tiếng Việt" instead of translating.
"""

from __future__ import annotations

import random
from typing import Callable

from minift.course.world import (
    CAPITALS,
    COLOURS_OF,
    LEGS_OF,
    LEXICON,
    LEXICON_BY_CATEGORY,
    SEED,
    SENTIMENT_LABELS,
    SENTIMENT_SENTENCES,
    SENTIMENT_WORDS,
    WORDS,
    _cap,
)

CORPUS_DOCS = 4000

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


