"""``motionmatch models``: model files fetched once into the cache (``fetch``), or checked there (``status``).

``pose``: MediaPipe's two BlazePose files (Apache-2.0), copied out of the ``mediapipe`` wheel on PyPI into
``<cache_dir>/pose/mediapipe-0.10.21/`` and checked against their recorded sha256
(:mod:`motionmatch.encoders.pose_models`). When the fetch fails the error gives the manual steps.
"""
from __future__ import annotations

from .args import Command

MODEL_SETS = ("pose",)
ACTIONS = ("fetch", "status")


class Models(Command):
    name = "models"
    help = "fetch model files into the cache (models fetch pose), or say where they are (models status pose)"

    @staticmethod
    def setup(parser):
        parser.add_argument("action", choices=ACTIONS, help="fetch: download when missing or corrupt, then verify; "
                                                            "status: check the cache, download nothing")
        parser.add_argument("models", choices=MODEL_SETS,
                            help="pose: BlazePose's detector and full landmark model (about 9 MB, from the 35 MB "
                                 "mediapipe wheel) for --encoder pose")

    @staticmethod
    def execute(args):
        from ..encoders.pose_models import (MEDIAPIPE_VERSION, POSE_MODELS, manual_steps, model_status,
                                            pose_model_paths, pose_models_dir)

        if args.action == "status":
            status = model_status()
            for name, (path, problem) in status.items():
                _, size, sha256 = POSE_MODELS[name]
                print(f"{name}: {path}  {size:,} bytes  sha256 {sha256}  [{problem or 'ok (sha256 verified)'}]")
            if any(problem for _, problem in status.values()):
                print(f"missing or corrupt: run `motionmatch models fetch pose`. {manual_steps()}")
                return 1
            return 0
        paths = pose_model_paths(fetch=True)  # WeightsUnavailableError (exit 2) names the manual steps
        print(f"BlazePose models of mediapipe=={MEDIAPIPE_VERSION} in {pose_models_dir()}:")
        for name, path in paths.items():
            _, size, sha256 = POSE_MODELS[name]
            print(f"  {name}: {path}  {size:,} bytes  sha256 {sha256} (verified)")
        print("use them with: motionmatch extract SOURCE --encoder pose")
        return 0


MODELS_COMMANDS = [Models]
