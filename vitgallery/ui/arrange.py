"""Sorting the folder grid by likeness: the folder arranged by core/organise/arrange.py in a job, its
order handed to the grid's model, and arranged again when the library changes."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from vitgallery.core.organise.arrange import arrange_folder
from vitgallery.ui.results_model import PhotoListModel, SortOrder
from vitgallery.ui.workers import Job, JobRunner, WorkerError

log = logging.getLogger(__name__)


class FolderArranger(QObject):
    """Keeps the folder model's likeness order current while the grid is sorted by likeness."""

    arranged = Signal(int)  # photos in the order (those the library has no vector for follow, by name)
    failed = Signal(object)  # WorkerError

    def __init__(self, jobs: JobRunner, model: PhotoListModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self._model = model
        self._folder: Path | None = None
        self._job: Job | None = None

    def set_folder(self, folder: Path | None) -> None:
        """The window shows another folder: the old order means nothing there."""
        self._folder = folder
        self._model.set_likeness_order([])
        self.refresh()

    def refresh(self) -> None:
        """Arrange the folder again (the library changed), if the grid is sorted by likeness."""
        if self._folder is None or self._model.sort_order is not SortOrder.LIKENESS:
            return
        if self._job is not None:
            self._job.cancel()
        folder = self._folder
        job = self._jobs.submit_library(
            lambda library, progress, cancel: arrange_folder(library, folder, progress=progress, cancel=cancel),
            name="arrange by likeness",
            on_finished=lambda order: self._on_arranged(job, folder, order),
            on_failed=lambda error: self._on_failed(job, error),
        )
        self._job = job

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._job = None

    def _on_arranged(self, job: Job, folder: Path, order: list[Path]) -> None:
        if job is not self._job or folder != self._folder:
            return
        self._job = None
        self._model.set_likeness_order(order)
        self.arranged.emit(len(order))

    def _on_failed(self, job: Job, error: WorkerError) -> None:
        if job is not self._job or job.cancelled:
            return
        self._job = None
        log.info("arranging by likeness failed: %s", error.message)
        self.failed.emit(error)
