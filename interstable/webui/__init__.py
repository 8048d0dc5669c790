"""The WebUI adapter: the only part of InterStable that imports the host (``modules``, ``gradio``).

It translates and nothing more: ``p`` and the script arguments to core configuration, host models to the core's
protocols, core exceptions to what the UI and the API show. ``scripts/interstable.py`` delegates here.
"""
