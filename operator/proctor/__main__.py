from proctor.cli import run

run()
