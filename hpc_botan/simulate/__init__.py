"""The simulate stage: LAMMPS runs of prepared configurations and their isoconfigurational ensembles."""
