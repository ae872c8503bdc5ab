"""The targets stage: isoconfigurational averages and the graphs they live on."""
