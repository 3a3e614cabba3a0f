"""``rerank batch --corpus FILE`` and ``--candidates RUN``: a document set shared by every query,
and a TREC run naming, per query, the corpus documents to rerank.

The corpus is read by the ``rank`` readers (``-F``, ``--field``, ``--id-field``). A document's
id is its ``--id-field`` value, else its 0-based index in the corpus (blank documents are
skipped and not counted, as ``rank`` numbers its input). Without ``--field``, a JSON object with
both a string ``title`` and a string ``text`` (a BEIR ``corpus.jsonl`` line) is scored as
``title + " " + text``, stripped — the text BEIR's rerankers build.

A run is ``qid Q0 docid rank score tag`` per line. Each query's candidates are taken in
trec_eval's order — score descending, then docid descending (trec_eval ignores the rank
column) — and cut to the top ``depth``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

import orjson

from rerank_cli import sources as readers
from rerank_cli.core.documents import Document
from rerank_cli.errors import InputError
from rerank_cli.sources.records import ReadOptions, ReadReport, chomp, split_lines, strip_bom
from rerank_cli.words import plural

DEFAULT_DEPTH = 100


@dataclass
class Candidate:
    docid: str
    score: float
    line: int | None  # where the run names it, for messages (None: not from a file's line)


@dataclass
class Corpus:
    name: str
    documents: list[Document]  # each with .index its position in the corpus
    keyed: bool  # ids from --id-field (else: the index)
    _by_id: dict[str, int] | None = field(default=None, repr=False)

    def key_of(self, document: Document) -> str | None:
        """The id a run names the document by: its --id-field value as text, else its index."""
        if not self.keyed:
            return str(document.index)
        if document.id is None:
            return None
        return id_text(document.id)

    def by_id(self) -> dict[str, int]:
        """id → index; two documents with one id are an error (a run could not tell them
        apart)."""
        if self._by_id is None:
            found: dict[str, int] = {}
            for document in self.documents:
                key = self.key_of(document)
                if key is None:
                    continue
                if key in found:
                    raise InputError(
                        f"duplicate document id {key} (documents {found[key]} and "
                        f"{document.index}): --candidates needs unique ids",
                        self.name,
                    )
                found[key] = document.index
            self._by_id = found
        return self._by_id

    def copies(self, indexes: Iterable[int] | None = None) -> list[Document]:
        """Fresh copies of the documents (all, or those at ``indexes``, in that order): a
        query's plan numbers its documents, so queries must not share the objects."""
        documents = self.documents
        chosen = documents if indexes is None else (documents[i] for i in indexes)
        return [replace(document) for document in chosen]


def id_text(value: object) -> str:
    """An id as a TREC run writes it: a string as is, a number as JSON writes it."""
    import orjson

    return value if isinstance(value, str) else orjson.dumps(value).decode()


def beir_text(document: Document) -> None:
    """``title + " " + text``, stripped, for an object with both as strings (BEIR's join)."""
    record = document.record
    if isinstance(record, dict):
        title, text = record.get("title"), record.get("text")
        if isinstance(title, str) and isinstance(text, str):
            document.text = (title + " " + text).strip()


def read_corpus(data: bytes, name: str, options: ReadOptions, report: ReadReport) -> Corpus:
    documents = list(readers.read(data, name, options, report))
    for index, document in enumerate(documents):
        document.index = index
        if options.field is None:
            beir_text(document)
    return Corpus(name, documents, keyed=options.id_field is not None)


def read_run(data: bytes, name: str, report: ReadReport) -> dict[str, list[Candidate]]:
    """qid → its candidates in trec_eval's order (score in single precision descending, docid
    descending: the order ``rerank eval`` judges the run in, so --depth cuts where trec_eval
    would). The run is read as ``rerank eval --run`` reads one: a TREC run or ``rerank batch``
    output, with the same checks and messages."""
    from rerank_cli.core.metrics import ranking
    from rerank_cli.sources.judgements import Where
    from rerank_cli.sources.judgements import read_run as read_scores

    where: Where = {}
    run = read_scores(data, name, report, where)
    return {
        qid: [Candidate(docid, scores[docid], where[qid, docid]) for docid in ranking(scores)]
        for qid, scores in run.items()
    }


def candidate_indexes(
    corpus: Corpus, run_name: str, qid: str, candidates: list[Candidate], depth: int | None
) -> list[int]:
    """The corpus indexes of a query's top ``depth`` (None: all) candidates, in the run's
    order; an id not
    in the corpus is an :class:`InputError` naming it."""
    by_id = corpus.by_id()
    indexes = []
    for candidate in candidates[:depth]:
        index = by_id.get(candidate.docid)
        if index is None:
            raise InputError(
                f"docid {candidate.docid} (query {qid}) is not in the corpus {corpus.name}",
                run_name,
                candidate.line,
            )
        indexes.append(index)
    return indexes


def beir_queries(
    data: bytes, name: str, qrels: Mapping[str, Mapping[str, int]], warn: Callable[[str], None]
) -> bytes:
    """``queries.jsonl`` (``{"_id", "text"}``) as batch query lines (``{"id", "query"}``), for
    the queries the qrels judge (queries.jsonl holds every split's), in its order."""
    out = []
    found: set[str] = set()
    for number, raw in split_lines(strip_bom(data)):
        body = chomp(raw)
        if not body.strip():
            continue
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise InputError(f"invalid JSON: {error}", name, number) from None
        if (
            not isinstance(value, dict)
            or "_id" not in value
            or not isinstance(value.get("text"), str)
        ):
            raise InputError('expected {"_id": …, "text": "…"} (a BEIR query)', name, number)
        qid = id_text(value["_id"])
        if qid in found:
            raise InputError(f"query {qid} given twice", name, number)
        found.add(qid)
        if qrels.get(qid):
            out.append(orjson.dumps({"id": qid, "query": value["text"]}) + b"\n")
    missing = [qid for qid in qrels if qrels[qid] and qid not in found]
    if missing:
        warn(
            f"{plural(len(missing), 'query')} of the qrels {'is' if len(missing) == 1 else 'are'}"
            f" not in {name}: not ranked, e.g. {missing[0]!r}"
        )
    if not out:
        raise InputError("no query of the qrels is in it", name)
    return b"".join(out)
