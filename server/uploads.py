"""Where a job's inputs come from: uploads written into the store, and server paths checked.

An upload is written chunk by chunk into ``STORE/uploads/<random>/`` (never held whole in
memory) and checked against the sizes its header declared; only a complete upload moves, in one
rename, to ``STORE/inputs/<job id>/`` before its job is recorded. A crash in between leaves a
folder without a job, which :meth:`UploadArea.clean` removes at the next start, with any
half-written upload.

Uploaded inputs are removed once their job ends (succeeded, failed or cancelled): its outcome
is in the database, and a resubmission with its key answers the job without running it.

A path input is read by the server itself, so it is accepted only inside a folder the server
was started with (``--allow-path``): a client cannot make the server read any file it names.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from orstream.jobs import JobInput, JobSubmission
from orstream.server.job_errors import JobRefused, UploadTooLarge


@dataclass(frozen=True)
class ReceivedUpload:
    """A submission's inputs once every byte arrived: the folder holding the uploads, and the
    inputs as the job records them."""

    folder: Path
    inputs: tuple[JobInput, ...]


class UploadArea:
    """The uploads and allowed paths of one store.

    Args:
        store_folder: the server's ``--store``.
        max_upload_bytes: the most bytes one submission may upload, all inputs together.
        allowed_paths: folders whose files clients may name as path inputs.
    """

    def __init__(
        self, store_folder: Path, max_upload_bytes: int, allowed_paths: Sequence[Path] = ()
    ) -> None:
        self._inputs = store_folder / "inputs"
        self._partial = store_folder / "uploads"
        self._max_upload_bytes = max_upload_bytes
        self._allowed = tuple(path.resolve() for path in allowed_paths)

    def input_path(self, job_id: str, name: str) -> Path:
        """Where job ``job_id`` keeps its uploaded input ``name``."""
        return self._inputs / job_id / name

    def check(self, submission: JobSubmission) -> None:
        """Refuse a submission before its bytes are read: too large an upload, or a path
        input that is not an allowed, existing file.

        Raises:
            UploadTooLarge: the upload is larger than the server accepts.
            JobRefused: a path input is not allowed or not a file.
        """
        if submission.upload_bytes > self._max_upload_bytes:
            raise UploadTooLarge(
                f"the upload is {submission.upload_bytes} bytes; this server accepts at most "
                f"{self._max_upload_bytes}"
            )
        for spec in submission.inputs:
            if spec.path is not None:
                self._allowed_file(spec.name, spec.path)

    def receive(
        self, submission: JobSubmission, chunks: Iterable[tuple[int, bytes]]
    ) -> ReceivedUpload:
        """Write the uploaded inputs' chunks into a new folder and describe every input.

        Raises:
            JobRefused: a chunk names an input that is not uploaded or arrives out of order, or
                an upload is longer or shorter than its header declared.
        """
        folder = self._partial / uuid.uuid4().hex
        folder.mkdir(parents=True)
        try:
            self._write(submission, iter(chunks), folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        inputs = []
        for spec in submission.inputs:
            if spec.path is not None:
                path = self._allowed_file(spec.name, spec.path)
                inputs.append(JobInput(spec.name, path.stat().st_size, False, str(path)))
            else:
                inputs.append(JobInput(spec.name, spec.upload_bytes or 0, True))
        return ReceivedUpload(folder, tuple(inputs))

    def keep(self, upload: ReceivedUpload, job_id: str) -> None:
        """Move a received upload to its job's folder."""
        self._inputs.mkdir(parents=True, exist_ok=True)
        upload.folder.rename(self._inputs / job_id)

    def discard(self, job_id: str) -> None:
        """Remove the inputs kept for ``job_id`` (its record was not made, or it ended)."""
        shutil.rmtree(self._inputs / job_id, ignore_errors=True)

    def clean(self, unfinished: set[str]) -> None:
        """Remove half-written uploads, and kept inputs of every job but the ``unfinished``
        ones (a job that ended while the server stopped, or none: a crash between keeping an
        upload and recording its job)."""
        shutil.rmtree(self._partial, ignore_errors=True)
        if self._inputs.is_dir():
            for folder in self._inputs.iterdir():
                if folder.name not in unfinished:
                    shutil.rmtree(folder, ignore_errors=True)

    def _write(
        self, submission: JobSubmission, chunks: Iterator[tuple[int, bytes]], folder: Path
    ) -> None:
        uploads = [
            (index, spec)
            for index, spec in enumerate(submission.inputs)
            if spec.upload_bytes is not None
        ]
        pending = next(chunks, None)
        for index, spec in uploads:
            declared = spec.upload_bytes or 0
            written = 0
            with (folder / spec.name).open("wb") as file:
                while pending is not None and pending[0] == index:
                    written += len(pending[1])
                    if written > declared:
                        raise JobRefused(
                            f"input {spec.name!r}: more than the {declared} bytes declared"
                        )
                    file.write(pending[1])
                    pending = next(chunks, None)
            if written < declared:
                raise JobRefused(
                    f"input {spec.name!r}: the upload ended at {written} of {declared} bytes"
                )
        if pending is not None:
            raise JobRefused(
                f"a chunk for input {pending[0]}, which is not an upload or came out of order"
            )

    def _allowed_file(self, name: str, path_text: str) -> Path:
        path = Path(path_text).resolve()
        if not any(path.is_relative_to(folder) for folder in self._allowed):
            raise JobRefused(
                f"input {name!r}: {path_text[:200]} is not inside a folder this server reads "
                "(start it with --allow-path FOLDER, or upload the file)"
            )
        if not path.is_file():
            raise JobRefused(f"input {name!r}: no file {path_text[:200]} on the server")
        return path
