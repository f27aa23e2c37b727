#!/usr/bin/env python3
"""Builds the code-derived part of summary/src/vocabulary.txt (the rest is
ops-words.txt: `sort -u` of both, one word a line).

Words are the letter runs of identifiers and prose (split at camelCase boundaries,
lower-cased) in the Rust crates' sources under the given directories; a word is kept when
at least MIN_CRATES crates use it, it has 3 to 20 letters, and it is not a personal name
from NAMES. Usage: build.py MIN_CRATES DIR... > vocabulary.txt
"""
import os, re, sys
from collections import defaultdict

NAMES = set("""
aaron abigail adam adrian alan albert alex alexander alice alicia amanda amber amy andrea andrew
angela anna anne anthony antonio arthur ashley barbara benjamin betty beverly billy bob bobby
brandon brenda brian bruce bryan carl carol carlos carolyn catherine charles charlie cheryl
christian christina christine christopher cindy carlos cynthia daniel danielle david deborah
debra denise dennis diana diane donald donna doris dorothy douglas dylan edward elizabeth
emily emma eric ethan eugene evelyn frances frank gabriel gary george gerald gloria grace
gregory hannah harold heather helen henry jack jacob jacqueline james jane janet janice jason
jean jeffrey jennifer jeremy jerry jesse jessica joan joe john johnny jonathan jordan jose
joseph joshua joyce juan judith judy julia julie justin karen katherine kathleen kathryn
kayla keith kelly kenneth kevin kimberly kyle larry laura lauren lawrence linda lisa logan
louis madison margaret maria marie marilyn mark martha mary matthew megan melissa michael
michelle nancy natalie nathan nicholas nicole noah olivia pamela patricia patrick paul peter
philip rachel ralph randy raymond rebecca richard robert roger ronald rose roy russell ruth
ryan samantha samuel sandra sara sarah scott sean sharon shirley sophia stephanie stephen
steven susan teresa terry theresa thomas timothy tyler victoria vincent virginia walter wayne
william willie zachary smith johnson williams brown jones garcia miller davis rodriguez
martinez hernandez lopez gonzalez wilson anderson taylor moore jackson martin lee perez
thompson white harris sanchez clark ramirez lewis robinson walker young allen king wright
hill flores green adams nelson baker hall rivera campbell mitchell carter roberts doe eve
mallory trent dave erin frank oscar peggy trudy victor walter
""".split())

WORD = re.compile(r"[A-Za-z]+")
CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+")

def main():
    min_crates = int(sys.argv[1])
    seen = defaultdict(set)
    for root in sys.argv[2:]:
        for crate in sorted(os.listdir(root)):
            base = os.path.join(root, crate)
            if not os.path.isdir(base):
                continue
            name = re.sub(r"-[0-9][^/]*$", "", crate)
            words = set()
            for d, _, files in os.walk(base):
                for f in files:
                    if not f.endswith((".rs", ".md")):
                        continue
                    try:
                        text = open(os.path.join(d, f), encoding="utf-8", errors="ignore").read(400_000)
                    except OSError:
                        continue
                    for w in WORD.findall(text):
                        for p in CAMEL.findall(w):
                            words.add(p.lower())
            for w in words:
                seen[w].add(name)
    out = sorted(w for w, c in seen.items()
                 if len(c) >= min_crates and 3 <= len(w) <= 20 and w not in NAMES)
    print("\n".join(out))

main()
