"""Any language in, English out: which language the plain words of a user's prompt are in, and what of the prompt is
re-attached when they are not English.

Stable Diffusion's CLIP understands English; a user who writes ``rote Katze auf dem Sofa, Ölgemälde`` gets an
English prompt from the LLM (it is told the wishes are in German and must be written in English). The user's prompt
is re-attached as written, as every prompt is (nothing the user wrote is dropped); with ``syntax_only`` only its WebUI
syntax (LoRA and hypernetwork tags, wildcards) is, not the German words (:func:`attached_user_prompt`).

:func:`foreign_language` is a heuristic with no model and no dictionary download:

- a prompt whose letters are mostly of one non-Latin script is in that script's language (Japanese when kana are
  among the CJK ideographs, Chinese without, Korean for Hangul, Russian for Cyrillic, and so on);
- a Latin-script prompt is foreign when at least two of its words (or its only word) are common words of one of
  eight European languages (function words and the nouns and colours image prompts use most) that are not English
  words too, and they outnumber its English words. Letters such as ``ß``, ``ñ`` or ``ł`` count as one such word.

Limits: loanwords and proper names stay English (``café``, ``Pokémon``, ``Mona Lisa`` are not flagged); a prompt of
rare foreign nouns without any common word (``Ölgemälde`` alone) is flagged only by its letters; a mixed prompt
counts by majority.
"""

from __future__ import annotations

import re
import unicodedata

from interstable.prompt.cleaning import plain_theme

__all__ = ["TRANSLATION_WORDS", "attached_user_prompt", "foreign_language", "user_syntax"]

TRANSLATION_WORDS = "English, language, translate, translated, translation"
"""The words of the order to write in English: taken out of the LLM's phrases like the user's own words, because
small models copy them ("a work of art in the English language")."""

_SCRIPTS = {
    "HANGUL": "Korean",
    "CYRILLIC": "Russian",
    "ARABIC": "Arabic",
    "HEBREW": "Hebrew",
    "GREEK": "Greek",
    "THAI": "Thai",
    "DEVANAGARI": "Hindi",
    "BENGALI": "Bengali",
    "TAMIL": "Tamil",
    "ARMENIAN": "Armenian",
    "GEORGIAN": "Georgian",
}


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_ENGLISH = _set(
    """a an the and or of in on at to with without from by for over under near behind above below into onto
    is are was be has have it its this that these those very much many some no not one two three
    man woman girl boy cat dog house sky forest tree city night day sun moon sea beach street room light dark
    red blue green black white yellow pink purple orange brown grey gray gold silver
    painting photo picture portrait landscape style art detailed beautiful old new small big large long short hair
    eyes face hand flower flowers water fire snow rain cloud clouds mountain river lake garden window door table
    die see hat rose also so war will bin fine hand rock gift kind arm form super mode film hotel taxi pizza van
    bank sofa"""
)
"""Common English words of image prompts, and foreign-looking words that are English too (never a foreign hit)."""
_NEUTRAL = _set(
    """best quality masterpiece high highres absurdres ultra solo detailed intricate 8k 4k hdr uhd
    score up"""
)
"""Quality tags that users write in any language: neither English nor foreign words."""

_WORDS: dict[str, frozenset[str]] = {
    "German": _set(
        """der die das den dem des ein eine einer einem einen eines und oder mit ohne auf im am zum zur unter über
        vor hinter neben bei nach aus ist sind war sehr schön schöne schöner schönes nicht kein keine
        katze hund frau mann mädchen junge haus himmel wald baum bäume stadt nacht tag sonne mond meer strand straße
        zimmer licht dunkel dunkle rot rote roter rotes blau blaue blauer grün grüne schwarz schwarze weiß weiße
        gelb gelbe bild gemälde foto porträt landschaft stil alt alte alter klein kleine groß große lange haare
        augen gesicht blume blumen wasser feuer schnee regen wolken berg berge fluss garten fenster tür tisch
        auto"""
    ),
    "French": _set(
        """le la les un une des du de et ou avec sans sur sous dans devant derrière près est sont très beau belle
        chat chien femme homme fille garçon maison ciel forêt arbre ville nuit jour soleil lune mer plage rue
        chambre lumière sombre rouge bleu bleue vert verte noir noire blanc blanche jaune tableau peinture photo
        portrait paysage vieux vieille petit petite grand grande longs cheveux yeux visage fleur fleurs eau feu
        neige pluie nuages montagne rivière jardin fenêtre porte canapé voiture"""
    ),
    "Spanish": _set(
        """el la los las un una unos unas del y o con sin sobre bajo en entre es son muy hermoso hermosa
        gato perro mujer hombre niña niño casa cielo bosque árbol ciudad noche día sol luna mar playa calle
        habitación luz oscuro oscura rojo roja azul verde negro negra blanco blanca amarillo pintura cuadro foto
        retrato paisaje viejo vieja pequeño pequeña grande largo pelo ojos cara flor flores agua fuego nieve lluvia
        nubes montaña río jardín ventana puerta mesa coche"""
    ),
    "Italian": _set(
        """il lo la gli le un uno una del della dei delle e o con senza su sotto tra fra è sono molto bello bella
        gatto cane donna uomo ragazza ragazzo casa cielo bosco albero città notte giorno sole luna mare spiaggia
        strada stanza luce scuro scura rosso rossa azzurro verde nero nera bianco bianca giallo pittura dipinto
        ritratto paesaggio vecchio vecchia piccolo piccola grande lunghi capelli occhi viso fiore fiori acqua fuoco
        neve pioggia nuvole montagna fiume giardino finestra porta tavolo divano"""
    ),
    "Portuguese": _set(
        """o a os as um uma do da dos das e ou com sem sobre sob em no na entre é são muito bonito bonita
        gato cachorro cão mulher homem menina menino casa céu floresta árvore cidade noite dia sol lua mar praia
        rua quarto luz escuro escura vermelho vermelha azul verde preto preta branco branca amarelo pintura
        quadro retrato paisagem velho velha pequeno pequena grande cabelo olhos rosto flor flores água fogo neve
        chuva nuvens montanha rio jardim janela porta mesa carro"""
    ),
    "Dutch": _set(
        """de het een en of met zonder op onder boven in naast bij van is zijn zeer mooi mooie
        kat hond vrouw meisje jongen huis lucht bos boom stad nacht dag zon maan zee strand straat kamer licht
        donker rood rode blauw blauwe groen groene zwart zwarte wit witte geel schilderij foto portret landschap
        oud oude klein kleine groot grote lang haar ogen gezicht bloem bloemen water vuur sneeuw regen wolken berg
        rivier tuin raam deur tafel bank"""
    ),
    "Polish": _set(
        """i w na z ze pod nad przy obok jest są bardzo piękny piękna kot pies kobieta mężczyzna dziewczyna
        chłopiec dom niebo las drzewo miasto noc dzień słońce księżyc morze plaża ulica pokój światło ciemny
        czerwony czerwona niebieski zielony czarny czarna biały biała żółty obraz zdjęcie portret krajobraz stary
        mały duży długie włosy oczy twarz kwiat kwiaty woda ogień śnieg deszcz chmury góra rzeka ogród okno drzwi
        stół kanapa"""
    ),
    "Turkish": _set(
        """ve ile bir bu çok güzel kedi köpek kadın adam kız erkek ev gökyüzü orman ağaç şehir gece gün güneş ay
        deniz plaj sokak oda ışık karanlık kırmızı mavi yeşil siyah beyaz sarı resim tablo fotoğraf portre manzara
        eski küçük büyük uzun saç gözler yüz çiçek çiçekler su ateş kar yağmur bulutlar dağ nehir bahçe pencere
        kapı masa"""
    ),
}
"""Common words of image prompts in each Latin-script language this detects."""

_LETTERS = {
    "German": "äöüß",
    "French": "èêëçœàâîôû",
    "Spanish": "ñ¿¡",
    "Portuguese": "ãõ",
    "Polish": "łąęśźżćń",
    "Turkish": "ığş",
    "Czech": "čřěů",
    "Romanian": "ășț",
    "Swedish": "å",
    "Danish": "øæ",
}
"""Letters that English never uses and that mark one language (any one of them counts as one foreign word)."""

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_ANGLE_TAG = re.compile(r"<[^<>\n]{1,200}>")
_WILDCARD = re.compile(r"__[\w./*-]{1,100}__")


def _script_language(letters: list[str]) -> str:
    scripts: dict[str, int] = {}
    for ch in letters:
        if ch.isascii():
            continue
        name = unicodedata.name(ch, "")
        first = name.split(" ", 1)[0]
        if first == "CJK":
            scripts["CJK"] = scripts.get("CJK", 0) + 1
        elif first in ("HIRAGANA", "KATAKANA"):
            scripts["KANA"] = scripts.get("KANA", 0) + 1
        elif first in _SCRIPTS:
            scripts[first] = scripts.get(first, 0) + 1
    if not scripts or sum(scripts.values()) * 10 < len(letters) * 3:  # under 30 % of the letters
        return ""
    if scripts.get("KANA"):
        return "Japanese"
    top = max(scripts, key=scripts.__getitem__)
    return "Chinese" if top == "CJK" else _SCRIPTS[top]


def foreign_language(user_prompt: str) -> str:
    """The language of the plain words of ``user_prompt`` when it is not English, else "" (see the module notes).

    Only the words reach the check (:func:`plain_theme` strips LoRA tags, weights, ``BREAK``...), so
    ``<lora:rote_katze:0.8>, masterpiece`` is English and ``(rote Katze:1.2)`` is German.
    """
    words_text = plain_theme(user_prompt)
    if not words_text:
        return ""
    letters = [ch for ch in words_text if ch.isalpha()]
    by_script = _script_language(letters)
    if by_script:
        return by_script
    words = [w.casefold() for w in _WORD.findall(words_text)]
    words = [w for w in words if w not in _NEUTRAL]
    english = sum(1 for w in words if w in _ENGLISH)
    best, best_hits = "", 0
    for language in sorted(set(_WORDS) | set(_LETTERS)):
        vocabulary = _WORDS.get(language, frozenset())
        marks = _LETTERS.get(language, "")
        hits = sum(1 for w in words if w not in _ENGLISH and (w in vocabulary or any(c in marks for c in w)))
        if hits > best_hits:
            best, best_hits = language, hits
    if not best or best_hits <= english:
        return ""
    return best if best_hits >= 2 or len(words) == 1 else ""


def user_syntax(user_prompt: str) -> str:
    """The WebUI syntax of ``user_prompt`` without its words: LoRA/hypernetwork tags and wildcards, in order."""
    if not isinstance(user_prompt, str):
        return ""
    found = sorted([*_ANGLE_TAG.finditer(user_prompt), *_WILDCARD.finditer(user_prompt)], key=lambda m: m.start())
    return ", ".join(m.group() for m in found)


def attached_user_prompt(user_prompt: str, *, syntax_only: bool = False) -> tuple[str, str]:
    """What of the user's prompt the final prompt re-attaches, and its language when not English.

    Returns:
        ``(user_prompt, "")`` for an English prompt, ``(user_prompt, language)`` for another language, and with
        ``syntax_only`` ``(user_syntax(user_prompt), language)`` for another language: the LLM wrote the words in
        English, so only the syntax is re-attached.
    """
    language = foreign_language(user_prompt)
    if not language or not syntax_only:
        return (user_prompt if isinstance(user_prompt, str) else ""), language
    return user_syntax(user_prompt), language
