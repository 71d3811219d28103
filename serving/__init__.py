"""Real-time serving: protocols, batching, the model runner, and the Ray Serve deployment.

The runner (``serving.runner``), the batching core (``serving.batching``) and the
protocol codecs do not import Ray; they run on a GPU machine where Ray is absent.
"""
