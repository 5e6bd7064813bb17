"""The shipped YAML presets: experiments, simulator zoo, persona bank, evaluation and accelerate
configs. A Python package only so that a non-editable install carries the YAML files with it
(simulators.zoo and simulators.persona read configs/simulators.yaml and configs/personas.yaml
beside the installed packages); nothing here is imported for its code."""
