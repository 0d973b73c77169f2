-- CreateTable
CREATE TABLE "PlaylistLiveItem" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "virtualLiveId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "sourceUrl" TEXT NOT NULL,
    "durationSeconds" REAL NOT NULL,
    CONSTRAINT "PlaylistLiveItem_virtualLiveId_fkey" FOREIGN KEY ("virtualLiveId") REFERENCES "VirtualLive" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "PlaylistLiveItem_virtualLiveId_position_key" ON "PlaylistLiveItem"("virtualLiveId", "position");
