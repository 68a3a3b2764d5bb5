"""The pipeline behind the window, over the document; no Qt here (napari style).

The controller turns document changes into work (load, depth, geometry, export, download) and
work results into events the views subscribe to. It runs work through an executor with two
methods, which the Qt window provides (depthstudio.app.tasks.TaskRunner) and a test may replace:

    executor.run(fn, *args, channel=, name=, replace=, on_done=, on_failed=, on_cancelled=, on_partial=)
    executor.debounce(key, ms, fn)

``fn(job, *args)`` gets a core Job (depthstudio.jobs). Settings changes re-run only the stage
they feed: a model or depth-file change re-estimates depth, a mesh, camera or mapping change
rebuilds geometry from the cached depth; effect previews belong to their views.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from depthstudio.app import core
from depthstudio.app.document import STAGES, Document, PhotoItem
from depthstudio.app.events import Event
from depthstudio.errors import DepthStudioError, SettingsError

#: Debounce of geometry rebuilds while a value is being dragged (ms).
GEOMETRY_DELAY_MS = 120


class Controller:
    """Photo -> depth -> geometry for the current photo, exports and downloads; emits events."""

    def __init__(self, document: Document, executor, inference=None) -> None:
        self.document = document
        self.executor = executor
        if inference is None:
            from depthstudio.workers import shared_inference

            inference = shared_inference()
        self.inference = inference
        self.derived: core.Derived | None = None
        #: How a settings change is applied; the window routes it through its undo stack.
        self.apply_change: Callable[[str, str, object], None] = document.set
        self.apply_section: Callable[[str, object], None] = document.replace_section
        self._depth_pending: dict[int, tuple] = {}
        self._loading: set[int] = set()
        self._generation = 0
        self.export_task = None

        # events (napari style): views connect to these
        self.photo_ready = Event("photo_ready")  # (item)
        self.photo_failed = Event("photo_failed")  # (item, message)
        self.camera_known = Event("camera_known")  # (item, intrinsics): before depth, from EXIF / settings
        self.depth_ready = Event("depth_ready")  # (item, used_model)
        self.depth_failed = Event("depth_failed")  # (item, message, details)
        self.weights_missing = Event("weights_missing")  # (message): the banner's cue
        self.depth_preview = Event("depth_preview")  # (item, DepthView, intrinsics): before the mesh
        self.geometry_ready = Event("geometry_ready")  # (item, Derived)
        self.geometry_failed = Event("geometry_failed")  # (message, details)
        self.export_finished = Event("export_finished")  # (ExportResult | None, error message | None)
        self.download_finished = Event("download_finished")  # (name, error message | None)
        self.problem = Event("problem")  # (title, message, details): something the user should read

        document.current_changed.connect(self._on_current_changed)
        document.settings_changed.connect(self._on_settings_changed)

    # ---- photos ---------------------------------------------------------------------------------
    def open_paths(self, paths, depth=None, depth_kind: str | None = None) -> list[int]:
        """Add photos (files, folders, .txt lists) and show the first; ``depth`` is the user's own
        depth as the CLI's --depth (one file, or a folder pairing files by stem)."""
        from depthstudio.io.images import find_inputs

        try:
            expanded = find_inputs([str(p) for p in paths])
        except DepthStudioError as exc:
            self.problem.emit("Cannot open", str(exc), "")
            return []
        if not expanded:
            self.problem.emit("Nothing to open", "No photos found in " + ", ".join(str(p) for p in paths), "")
            return []
        doc = self.document
        indices = doc.add_paths(expanded)
        if depth is not None:
            from depthstudio.geometry.depth import find_depth_file

            for path, index in zip(expanded, indices):
                try:
                    found = find_depth_file(path, depth)
                except DepthStudioError as exc:
                    self.problem.emit("No depth file", str(exc), "")
                    continue
                values = {"depth": found}
                if depth_kind is not None:
                    values["depth_kind"] = depth_kind
                doc.set_own(doc.items[index], "depth", **values)
        if indices:
            doc.set_current(indices[0])
        for index in indices[1:]:  # thumbnails for the filmstrip, after the shown photo
            item = doc.items[index]
            if item.photo is None and item.status != "failed":
                self._load(item)
        return indices

    def use_depth_file(self, path, kind: str | None = None) -> None:
        """The current photo's own depth file (None: back to the model)."""
        item = self.document.current
        if item is None:
            return
        values: dict = {"depth": Path(path) if path else None}
        if kind is not None:
            values["depth_kind"] = kind
        for name, value in values.items():
            self.apply_change("depth", name, value)

    def _on_current_changed(self, index: int) -> None:
        self.derived = None
        self._generation += 1
        item = self.document.current
        if item is not None:
            self.ensure_pipeline(item)

    def ensure_pipeline(self, item: PhotoItem) -> None:
        """Run whatever the item still needs: load, then depth, then geometry."""
        if item.status == "failed" and item.photo is None:
            return
        if item.photo is None:
            self._load(item)
        elif self.document.needs_depth(item):
            self._estimate(item)
        elif item is self.document.current:
            self.refresh_geometry()

    def _load(self, item: PhotoItem) -> None:
        if id(item) in self._loading:
            return
        self._loading.add(id(item))
        item.status = "loading"

        def work(job, path):
            job.set_message(f"Opening {path.name}…")
            photo = core.load_photo(path)
            job.partial(photo)  # depth can start now; the display copies follow
            preview = core.preview_rgb(photo.rgb)
            return photo, preview, core.thumbnail(preview)

        def loaded(photo):
            item.photo, item.status = photo, "loaded"
            if item is self.document.current:
                self._camera_before_depth(item)
                self.ensure_pipeline(item)

        def done(result):
            self._loading.discard(id(item))
            item.photo, item.extras["preview"], item.extras["thumbnail"] = result
            item.error = None
            self.photo_ready.emit(item)

        def failed(message, details):
            self._loading.discard(id(item))
            item.status, item.error = "failed", message
            self.photo_failed.emit(item, message)

        self.executor.run(work, item.path, channel="load", name=f"Opening {item.name}", on_done=done,
                          on_failed=failed, on_cancelled=lambda: self._loading.discard(id(item)), on_partial=loaded)

    def _camera_before_depth(self, item: PhotoItem) -> None:
        try:
            k = core.photo_camera(item.photo, self.document.sections["camera"])
        except DepthStudioError:
            return
        self.camera_known.emit(item, k)

    # ---- depth ----------------------------------------------------------------------------------
    def _estimate(self, item: PhotoItem) -> None:
        doc = self.document
        key = doc.depth_key(item)
        if self._depth_pending.get(id(item)) == key:
            return
        files = doc.own_settings(item, "depth")
        model = doc.sections["model"]
        uses_model = files.depth is None  # type: ignore[attr-defined]
        if uses_model:
            missing = core.weights_missing(model)
            if missing:
                item.status = "loaded"
                self.weights_missing.emit(missing)
                return
        self._depth_pending[id(item)] = key
        item.status = "estimating"
        worker = self.inference

        def work(job, photo):
            if uses_model:  # the photo came from its file: the worker reads it there (no pixels through the pipe)
                return core.estimate(job, photo, model, worker, reload=photo.path is not None)
            return core.read_depth(job, photo, files)

        def done(depth):
            if self._depth_pending.get(id(item)) == key:
                del self._depth_pending[id(item)]
            if doc.depth_key(item) != key:
                self.ensure_pipeline(item)  # the settings changed meanwhile
                return
            item.depth, item.depth_key, item.status = depth, key, "ready"
            doc.notify(item, "depth")
            self.depth_ready.emit(item, uses_model)
            if item is doc.current:
                self.refresh_geometry()

        def failed(message, details):
            self._depth_pending.pop(id(item), None)
            item.status = "loaded"
            self.depth_failed.emit(item, message, details)

        def cancelled():
            self._depth_pending.pop(id(item), None)
            item.status = "loaded"

        self.executor.run(work, item.photo, channel="depth", name=f"Depth for {item.name}",
                          on_done=done, on_failed=failed, on_cancelled=cancelled)

    # ---- geometry -------------------------------------------------------------------------------
    def refresh_geometry(self) -> None:
        """Depth view, intrinsics, cut-edge overlay and the preview mesh, from the cached depth."""
        doc = self.document
        item = doc.current
        if item is None or item.photo is None or item.depth is None or doc.needs_depth(item):
            return
        self._generation += 1
        generation = self._generation
        sections = dict(doc.sections)

        def current() -> bool:
            return generation == self._generation and item is doc.current

        def partial(value):
            if current():
                self.depth_preview.emit(item, *value)

        def done(derived):
            if current():
                self.derived = derived
                self.geometry_ready.emit(item, derived)

        def failed(message, details):
            if current():
                self.geometry_failed.emit(message, details)

        self.executor.run(core.derive, item.photo, item.depth, sections, item.extras.get("preview"),
                          channel="geometry", name="Building geometry", replace=True, on_done=done,
                          on_failed=failed, on_partial=partial)

    def focus_at(self, fx: float, fy: float) -> float | None:
        """Click-to-focus at (fx, fy), fractions of the image: the focus distance there, as a change."""
        if self.derived is None:
            return None
        distance = core.focus_distance_at(self.derived, fx, fy)
        if distance is not None:
            self.apply_change("dof", core.DOF_FOCUS_FIELD, distance)
        return distance

    def _on_settings_changed(self, section: str, name: str, value) -> None:
        stage = STAGES.get(section, "none")
        item = self.document.current
        if stage == "depth":
            if item is not None and item.photo is not None:
                self.ensure_pipeline(item)
        elif stage == "geometry":
            self.executor.debounce("geometry", GEOMETRY_DELAY_MS, self.refresh_geometry)

    # ---- export ---------------------------------------------------------------------------------
    def export_jobs(self, items: list[PhotoItem]) -> list[tuple]:
        """(PhotoJob, the model depth made for it or None) per photo; the child re-reads photos and depth files."""
        from depthstudio.outputs import PhotoJob

        doc = self.document
        out = []
        for i in items:
            own_file = doc.own_settings(i, "depth").depth is not None  # type: ignore[attr-defined]
            depth = i.depth if not doc.needs_depth(i) and not own_file else None
            out.append((PhotoJob(path=i.path, sections=doc.sections_for(i)), depth))
        return out

    def export(self, items: list[PhotoItem], folder: Path, on_progress: Callable | None = None):
        """Export photos into ``folder`` in a child process (the window never waits on it)."""
        if not items:
            return None
        if self.export_task is not None:
            self.problem.emit("Export running", "An export is already running; wait for it or cancel it.", "")
            return None
        for item in items:
            if item.depth is None and self.document.own_settings(item, "depth").depth is None:  # type: ignore[attr-defined]
                missing = core.weights_missing(self.document.sections["model"])
                if missing:
                    self.weights_missing.emit(missing)
                    return None
        try:
            self.document.sections["outputs"].validate()
        except SettingsError as exc:
            self.problem.emit("Nothing to export", str(exc), "")
            return None
        jobs = self.export_jobs(items)
        folder = Path(folder)

        def finish(result, error=None, details=""):
            self.export_task = None
            if result is not None:
                self._cache_depths(result)
            self.export_finished.emit(result, error)
            if error:
                self.problem.emit("Export failed", error, details)

        from depthstudio.outputs import export_photos_light, remove_staging
        from depthstudio.workers import run_in_process

        def work(job, jobs, folder):
            # nothing large crosses to the child pickled (that would hold this process's GIL and stall
            # the window): it reads the photos itself, and cached model depth through .npy files
            import shutil
            import tempfile

            from depthstudio.outputs import save_depth_for_job

            cache = Path(tempfile.mkdtemp(prefix="depthstudio-export-depth-"))
            try:
                photo_jobs = []
                for photo_job, depth in jobs:
                    if depth is not None:
                        save_depth_for_job(photo_job, depth, cache)
                    photo_jobs.append(photo_job)
                return run_in_process(job, export_photos_light, photo_jobs, folder, name="depthstudio-export",
                                      cleanup=lambda: remove_staging(folder))
            finally:
                shutil.rmtree(cache, ignore_errors=True)

        n = len(jobs)
        self.export_task = self.executor.run(
            work, jobs, folder, channel="export", name=f"Exporting {n} photo{'s' if n > 1 else ''}",
            on_done=finish, on_failed=lambda m, d: finish(None, m, d), on_cancelled=lambda: finish(None),
            on_progress=on_progress)
        return self.export_task

    def _cache_depths(self, result) -> None:
        doc = self.document
        for job in result.jobs:
            if job.new_depth is None:
                continue
            index = doc.index_of(job.path)
            if index < 0:
                continue
            item = doc.items[index]
            key = doc.depth_key(item)
            if doc.needs_depth(item):
                item.depth, item.depth_key = job.new_depth, key
                doc.notify(item, "depth")

    # ---- settings files -------------------------------------------------------------------------
    def load_settings_file(self, path) -> list[str]:
        """Apply a saved ``<stem>.settings.json`` (or any DepthStudio settings file); returns problems.

        Its depth file (if any) applies to the current photo.
        """
        from depthstudio.settings import read_settings_file

        sections = read_settings_file(path)
        doc = self.document
        problems = []
        for section, values in sections.items():
            if section not in doc.sections:
                continue
            current = doc.sections[section]
            try:
                wanted = type(current).from_dict({**current.to_dict(), **values})
            except (DepthStudioError, TypeError, ValueError) as exc:
                problems.append(f"{section}: {exc}")
                continue
            if wanted.to_dict() != current.to_dict():
                self.apply_section(section, wanted)
        return problems

    # ---- models ---------------------------------------------------------------------------------
    def download(self, name: str, backend: str = "auto", on_progress: Callable | None = None):
        def done(_):
            self.download_finished.emit(name, None)
            item = self.document.current
            if item is not None and item.photo is not None:
                self.ensure_pipeline(item)

        return self.executor.run(core.download_model, name, backend, channel="download", name=f"Downloading {name}",
                                 on_done=done, on_failed=lambda m, d: self.download_finished.emit(name, m),
                                 on_cancelled=lambda: self.download_finished.emit(name, "cancelled"),
                                 on_progress=on_progress)
