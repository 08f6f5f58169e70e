"""The course's closed world (data tables): a bilingual lexicon, a fact table, sentiment reviews.

Everything the course tasks ask about is here, and nothing else: the corpus states it, the tasks
ask about it, and §5's out-of-distribution questions ask about what is *not* here. Design for
learnability (a ~1M-parameter model on a CPU): 128 English–Vietnamese entries, 38 facts, short
reviews built from a few words; one-to-one translations, so every question has one answer.
"""

from __future__ import annotations

SEED = 20240601  # every random choice of the course data derives from this and the name of what it draws

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

