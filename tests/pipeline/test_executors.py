from pipeline.executors import LocalExecutor, ascii_label, longest_first


def test_longest_first_orders_by_cost_and_keeps_ties_in_order():
    lines = ["a b c", "hello there", "xyz", "hi", "world"]
    assert longest_first(lines, len) == ["hello there", "a b c", "world", "xyz", "hi"]


class _Double:
    def __init__(self, context: str) -> None:
        self.factor = int(context)

    def __call__(self, row):
        return {"n": row["n"] * self.factor}


def test_local_executor_maps_every_row_in_order():
    seen: list[int] = []
    LocalExecutor().map(
        _Double, "2", [{"n": n} for n in (3, 1, 2)], name="double", on_row=lambda r: seen.append(r["n"])
    )
    assert seen == [6, 2, 4]


def test_ascii_label_keeps_letters_drops_accents_and_marks_the_rest():
    assert ascii_label("dub entrevista señal.mp4 -> es") == "dub entrevista senal.mp4 -> es"
    assert ascii_label("dub Ünï 5.1.MKV -> pt") == "dub Uni 5.1.MKV -> pt"
    assert ascii_label("dub 東京.mp4 -> es") == "dub __.mp4 -> es"
    assert ascii_label("plain name") == "plain name"
