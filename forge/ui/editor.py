"""Page 5, config editor: start from config/pipeline.yaml or a preset, edit the YAML, validate it
with forge.config, and submit it as a Ray Job (or get the exact command when no cluster is up)."""
from __future__ import annotations

import streamlit as st

from forge.ui import common
from forge.ui.configs import EDITED_NAME, config_sources, job_runs_dir, submit_commands, validate_yaml
from forge.storage import masked


def page() -> None:
    st.title("Config editor")
    sources = config_sources()
    label = common.pick("Start from", list(sources), "config")
    text = st.text_area("Pipeline YAML", value=sources[label].read_text(), height=420,
                        key=f"yaml-{label}", help="press Ctrl+Enter or click outside to validate")
    cfg, error = validate_yaml(text)
    if error:
        st.error(f"error: {error}")
    else:
        st.success(f"valid: phases {' -> '.join(cfg.pipeline.phases) or '(none)'}; "
                   f"run name {cfg.run.name!r}")
    runs_dir = common.settings().runs_dir
    view = common.open_view_quiet()
    cluster = common.find_cluster(view)
    if view is not None:
        view.close()
    st.caption(f"A submitted run writes into this dashboard's runs location, "
               f"{masked(job_runs_dir(runs_dir))}, so it shows up on the overview.")
    if cluster is not None:
        if st.button("Submit as Ray Job", disabled=bool(error), type="primary"):
            try:
                submission = cluster.submit(text, runs_dir)
            except Exception as err:  # noqa: BLE001  (the job server's one-line reason)
                st.error(f"submit failed: {str(err).splitlines()[0]}")
            else:
                st.success(f"submitted Ray Job {submission}: {cluster.dashboard_url}/#/jobs/{submission}")
        return
    st.info("No Ray cluster is up: save the YAML and run one of")
    st.code("\n".join(submit_commands(runs_dir)), language="bash")
    st.download_button(f"Save as {EDITED_NAME}", data=text, file_name=EDITED_NAME,
                       mime="text/yaml", disabled=bool(error))
