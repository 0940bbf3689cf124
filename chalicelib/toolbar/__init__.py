"""The staff chat-toolbar page (聊天工具栏): who the customer in the chat is, inside WeCom."""
