"""Entry script of `forge ui` (run by `streamlit run`): the forge.ui pages, with the Ray cluster
finder of actors/ui_cluster.py. Arguments after `--`: --runs-dir DIR."""
import sys

from actors.ui_cluster import RayCluster
from forge.ui.app import main

main(sys.argv[1:], RayCluster.find)
