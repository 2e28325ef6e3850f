"""The reviewer web app: people approve what the machine drafted."""
