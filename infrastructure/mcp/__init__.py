"""The MCP client adapter: the official ``mcp`` package's client behind the ``McpClient`` port."""
