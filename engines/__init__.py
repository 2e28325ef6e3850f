"""Haechi's ground floor: the engines every stage stands on (data folder, database, broker,
object stores, media sniffing, the outbound fetch, mail, inputs, settings). It imports no stage.
"""
