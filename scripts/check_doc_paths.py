"""Every file name the docs mention exists: a path (src/..., events/..., scripts/...) at that
place in the repository, a bare name (sqs-batch.json, breaker.rs) as some tracked file's name.
Run by check-readme-commands.sh; prints each missing name with where it is mentioned."""
import os, re, subprocess, sys

DOCS = ["README.md", "BENCHMARKS.md", "CHANGELOG.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir("docs") if f.endswith(".md"))
# Names that stand for the reader's own files.
PLACEHOLDERS = {"DEST.json", "LAMBDA_EVENT.json", "event.json", "FILE.json"}
EXTENSIONS = "rs|json|ndjson|yaml|toml|md|sh|py|txt|lock"
PATH = re.compile(r"(?<![\w./-])((?:src|tests|events|scripts|docs|benches|examples)/[\w./-]*\.(?:%s)"
                  r"|(?:src|tests|events|scripts|docs|benches|examples)/[\w/-]+/)(?![\w])" % EXTENSIONS)
BARE = re.compile(r"(?<![\w./-])([\w-]+\.(?:%s))(?![\w/])" % EXTENSIONS)

tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout.split()
names = {os.path.basename(p) for p in tracked} | {"LICENSE"}
missing = []
for doc in DOCS:
    if not os.path.exists(doc):
        continue
    for number, line in enumerate(open(doc, encoding="utf-8"), 1):
        for match in PATH.finditer(line):
            path = match.group(1)
            if "*" not in path and not os.path.exists(path):
                missing.append(f"{doc}:{number}: {path}")
        for match in BARE.finditer(PATH.sub(" ", line)):
            name = match.group(1)
            if name not in names and name not in PLACEHOLDERS and not os.path.exists(name):
                missing.append(f"{doc}:{number}: {name}")
for entry in missing:
    print(f"no such file: {entry}")
sys.exit(1 if missing else 0)
