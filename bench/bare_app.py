"""The baseline: a bare Textual app with a 100-row DataTable, nothing else."""

from textual.app import App, ComposeResult
from textual.widgets import DataTable


class Bare(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("name", "id", "owner", "status")
        table.add_rows((f"row {i} name", f"id{i:08d}", "alice", "active") for i in range(100))


if __name__ == "__main__":
    Bare().run()
