# Thin aliases for the scripts the README documents.
.PHONY: demo test env benchmarks lint runtime-wheel
env:
	bash scripts/setup-env.sh
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
benchmarks:
	bash benchmarks/run_all.sh
lint:
	bash scripts/lint.sh
runtime-wheel:
	bash scripts/build-runtime-wheel.sh
